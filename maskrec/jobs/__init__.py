"""Background jobs: work on a thread that never touches Streamlit, which pages poll
(``background``); every kind of job the app runs builds on it.
"""
