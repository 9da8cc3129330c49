"""The geoforensics Streamlit app: ``geoforensics app`` runs ``streamlit run`` on this file.

Five pages (``st.navigation``), each a script beside this one that calls library functions
only (the CLI calls the same ones):

- Check (``check_page.py``): a clip's audio, frames, text hint, GPS tag and claimed place
  compared on an offline map, with the verdict, timeline, species and report downloads;
- Locate (``locate_page.py``): audio, an image or a text → heatmap and top-k places;
- Retrieve (``retrieve_page.py``): audio → country names and → images; species soundscapes;
- Batch (``batch_page.py``): the summary table, map and reports of a ``check FOLDER`` run;
- Benchmark (``benchmark_page.py``): the tables, CDF and maps of a ``geoforensics bench`` run.

``?demo=1`` in the URL runs the demo check on the Check page as soon as it opens.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

HERE = Path(__file__).resolve().parent
#: (file, title, icon, url path) of each page, in menu order.
PAGES: tuple[tuple[str, str, str, str], ...] = (
    ("check_page.py", "Check", ":material/fact_check:", "check"),
    ("locate_page.py", "Locate", ":material/travel_explore:", "locate"),
    ("retrieve_page.py", "Retrieve", ":material/manage_search:", "retrieve"),
    ("batch_page.py", "Batch", ":material/table_view:", "batch"),
    ("benchmark_page.py", "Benchmark", ":material/leaderboard:", "benchmark"),
)


def main() -> None:
    """Configure the page and run the navigation."""
    st.set_page_config(page_title="geoforensics", page_icon=":material/public:", layout="wide")
    pages = [
        st.Page(HERE / file, title=title, icon=icon, url_path=url, default=(i == 0))
        for i, (file, title, icon, url) in enumerate(PAGES)
    ]
    navigation = st.navigation(pages)
    st.sidebar.caption(
        "geoforensics: where is this sound from, and does it belong with the picture? "
        "Everything runs offline on this machine; maps are drawn without tiles."
    )
    navigation.run()


if __name__ == "__main__":
    main()
