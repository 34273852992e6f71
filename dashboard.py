"""The entry point: `streamlit run dashboard.py`. Draws the frame, then runs the chosen page."""

import frame

frame.render().run()
