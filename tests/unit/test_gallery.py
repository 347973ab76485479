"""The gallery's pure parts: schema keys, the applier on an empty Config, the demo listing,
path checks, access, caps and which kernels to free."""

import os
from pathlib import Path

import pytest
from traitlets.config import Config

from gallery.demos import demo_entries, find_demo, notebook_file, visible_to
from gallery.kernels import SLIDER_NAMES, with_slider_names, without_cdn_links
from gallery.policy import Caps, ServedKernel, may_start, refills, to_free
from hub_config.appliers.gallery import ACCESS_SCOPE, apply_gallery
from hub_config.catalogue import CatalogueError, load_catalogue

from .conftest import SITE, course

DEMOS = [
    {"notebook": "knn.ipynb", "title": {"fr": "Voisins", "en": "Neighbours"}, "public": True},
    {"notebook": "deep/trees.ipynb", "title": {"fr": "Arbres", "en": "Trees"}},
    {"notebook": "energy.ipynb", "title": {"fr": "Énergie", "en": "Energy"}, "members_only": True},
]


@pytest.fixture
def gallery_catalogue(write_catalogue):
    return load_catalogue(write_catalogue(courses={"algo": course(demos=DEMOS)}))


def problems(write_catalogue, **kw) -> str:
    with pytest.raises(CatalogueError) as err:
        load_catalogue(write_catalogue(**kw))
    return str(err.value)


# --- schema --------------------------------------------------------------------------------


def test_gallery_settings_have_units_and_defaults(write_catalogue):
    site = load_catalogue(
        write_catalogue(site={**SITE, "gallery": {"idle_timeout": "5m", "closed_page_timeout": "20s"}})
    ).site
    assert site.gallery.idle_timeout == 300 and site.gallery.closed_page_timeout == 20
    assert site.gallery.port == 8090 and site.gallery.max_kernels == 8 and site.gallery.preheat == 1


@pytest.mark.parametrize(
    "gallery, reason",
    [
        ({"port": 8000}, "port 8000 is already used by listen.port"),
        ({"max_kernels": 2, "max_kernels_per_demo": 3}, "3 is more than max_kernels (2)"),
        ({"idle_timeout": "soon"}, "is not a duration"),
        ({"caps": 3}, "unknown key"),
    ],
)
def test_bad_gallery_settings_are_named(write_catalogue, gallery, reason):
    text = problems(write_catalogue, site={**SITE, "gallery": gallery})
    assert "gallery" in text and reason in text


@pytest.mark.parametrize(
    "notebook",
    ["../source/a/a.ipynb", "/etc/x.ipynb", ".hidden.ipynb", "a/../../b.ipynb", "a//b.ipynb", "x.py"],
)
def test_a_demo_notebook_cannot_point_outside_demos(write_catalogue, notebook):
    demo = {"notebook": notebook, "title": {"fr": "x", "en": "x"}}
    assert "demos[0].notebook" in problems(write_catalogue, courses={"algo": course(demos=[demo])})


def test_a_demo_cannot_be_public_and_members_only(write_catalogue):
    demo = {"notebook": "a.ipynb", "title": {"fr": "x", "en": "x"}, "public": True, "members_only": True}
    text = problems(write_catalogue, courses={"algo": course(demos=[demo])})
    assert "demos[0].members_only: a demo cannot be both public and members_only" in text


# --- applier -------------------------------------------------------------------------------


def test_apply_gallery(gallery_catalogue):
    c = Config()
    apply_gallery(c, gallery_catalogue)
    (service,) = c.JupyterHub.services
    assert service["name"] == "gallery" and service["url"] == "http://127.0.0.1:8090"
    assert service["command"][1:] == ["-m", "gallery", str(gallery_catalogue.site_file)]
    assert Path(service["command"][0]).is_absolute()
    assert "api_token" not in service  # made by the hub; nothing secret in `ailys render`
    assert "load_roles" not in c.JupyterHub  # no API scopes: it only identifies visitors through OAuth
    assert c.JupyterHub.extra_user_scopes == {ACCESS_SCOPE} == {"access:services!service=gallery"}
    assert c.JupyterHub.template_vars["gallery_url"] == "/services/gallery/"
    assert c.JupyterHub.template_vars["gallery_public_demos"] == [
        {"title": {"fr": "Voisins", "en": "Neighbours"}, "url": "/services/gallery/demo/algo/knn"}
    ]
    assert set(c) == {"JupyterHub"}


def test_apply_gallery_keeps_what_others_set(gallery_catalogue):
    c = Config()
    c.JupyterHub.extra_user_scopes = {"read:users:name"}
    c.JupyterHub.template_vars = {"site": "x"}
    apply_gallery(c, gallery_catalogue)
    assert c.JupyterHub.extra_user_scopes == {"read:users:name", ACCESS_SCOPE}
    assert c.JupyterHub.template_vars["site"] == "x"


def test_disabled_gallery_sets_nothing(write_catalogue):
    c = Config()
    apply_gallery(c, load_catalogue(write_catalogue(site={**SITE, "gallery": {"enabled": False}})))
    assert c == Config()


# --- listing, paths, access ----------------------------------------------------------------


def test_listing_is_what_course_files_declare(gallery_catalogue):
    entries = demo_entries(gallery_catalogue)
    assert [e.key for e in entries] == ["algo/knn", "algo/deep/trees", "algo/energy"]
    assert entries[1].notebook_path == "algo/demos/deep/trees.ipynb"
    assert find_demo(gallery_catalogue, "algo/deep/trees") == entries[1]
    for key in ("algo/knn.ipynb", "algo/../algo/knn", "algo/KNN", "algo//knn", "/algo/knn", "algo/source"):
        assert find_demo(gallery_catalogue, key) is None


def test_notebook_file_stays_inside_demos(gallery_catalogue, tmp_path):
    courses = gallery_catalogue.courses_dir
    demos = courses / "algo" / "demos"
    (demos / "deep").mkdir(parents=True)
    knn, trees, energy = demo_entries(gallery_catalogue)
    assert notebook_file(courses, knn) is None  # declared but missing
    (demos / "knn.ipynb").write_text("{}")
    assert notebook_file(courses, knn) == demos / "knn.ipynb"
    secret = tmp_path / "solution.ipynb"
    secret.write_text("{}")
    os.symlink(secret, demos / "deep" / "trees.ipynb")  # a symlink out of the folder
    assert notebook_file(courses, trees) is None
    os.symlink(demos / "knn.ipynb", demos / "energy.ipynb")  # a symlink inside is fine
    assert notebook_file(courses, energy) == demos / "knn.ipynb"
    (demos / "energy.ipynb").unlink()
    (demos / "energy.ipynb").mkdir()  # a folder is not a notebook
    assert notebook_file(courses, energy) is None


def test_who_may_open_what(gallery_catalogue):
    knn, trees, energy = demo_entries(gallery_catalogue)
    assert [visible_to(e, None) for e in (knn, trees, energy)] == ["open", "login", "login"]
    assert [visible_to(e, "stranger") for e in (knn, trees, energy)] == ["open", "open", "forbidden"]
    # a learner and an instructor of the course, by the hub groups the course sync keeps
    assert visible_to(energy, "ana", groups={"course-algo"}) == "open"
    assert visible_to(energy, "prof", groups={"staff-algo"}) == "open"
    assert visible_to(energy, "ana", groups={"course-stats"}) == "forbidden"  # another course's group
    assert visible_to(energy, "root-admin", admin=True) == "open"


# --- caps and freeing ----------------------------------------------------------------------


def test_caps():
    caps = Caps(total=4, per_demo=2)
    assert may_start(caps, total=3, of_demo=1)
    assert not may_start(caps, total=4, of_demo=0)
    assert not may_start(caps, total=1, of_demo=2)
    assert refills(caps, preheat=1, pooled=0, total=0, of_demo=0) == 1
    assert refills(caps, preheat=2, pooled=0, total=3, of_demo=0) == 1  # the total cap bites
    assert refills(caps, preheat=3, pooled=0, total=0, of_demo=1) == 1  # the demo cap bites
    assert refills(caps, preheat=1, pooled=1, total=1, of_demo=1) == 0
    assert refills(caps, preheat=1, pooled=0, total=5, of_demo=0) == 0  # never negative


def test_which_kernels_are_freed():
    def k(name, connections, last_connected=None, last_activity=100.0):
        return ServedKernel(
            name,
            served_at=100.0,
            connections=connections,
            last_connected=last_connected,
            last_activity=last_activity,
        )

    kernels = [
        k("never-opened", 0),  # a plain request: no page ever connected
        k("closed-late", 0, last_connected=125.0),  # the page was open until 125
        k("open-busy", 1, last_activity=200.0),
        k("abandoned", 1, last_activity=110.0),
    ]
    assert to_free(kernels, now=129.0, closed_page_timeout=30, idle_timeout=100) == []
    assert to_free(kernels, now=130.0, closed_page_timeout=30, idle_timeout=100) == ["never-opened"]
    assert to_free(kernels, now=210.0, closed_page_timeout=30, idle_timeout=100) == [
        "never-opened",
        "closed-late",
        "abandoned",
    ]


def test_pages_fetch_nothing_from_third_parties():
    html = (
        '<head>\n<link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/@fortawesome/x/all.min.css" '
        'type="text/css" />\n<link rel="stylesheet" href="/services/gallery/voila/static/a.css">\n</head>'
    )
    assert (
        without_cdn_links(html)
        == '<head>\n<link rel="stylesheet" href="/services/gallery/voila/static/a.css">\n</head>'
    )


def test_demo_pages_name_their_slider_handles_before_the_body_ends():
    page = "<html><body><div>widgets</div></body></html>"
    named = with_slider_names(page)
    assert named == page.replace("</body>", SLIDER_NAMES + "</body>")
    assert 'setAttribute("aria-label"' in SLIDER_NAMES and "[role=slider]" in SLIDER_NAMES
    assert with_slider_names("no body") == "no body"
