"""The entry point: `streamlit run dashboard.py`. Draws the frame, then runs the chosen page."""

import frame
import presenter_ui

navigation = frame.render()
presenter_ui.frame_ui(navigation.url_path)  # presenter mode's frame, when the link asked for it
navigation.run()
