"""Background jobs: work on a thread that never touches Streamlit, which pages poll
(``background``); every kind of job the app runs builds on it, and one registry of this process
keeps them all, training runs, sweeps, the suspect finder and video jobs, sharing MASKREC_MAX_JOBS
slots (``registry``).
"""
