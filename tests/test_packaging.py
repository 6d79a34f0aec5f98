"""The distribution declares what the package imports, and installs offline next to torch and fairseq.

* Every third-party module the package's source imports (found with ``ast``, function-level
  imports included, optional ``try: import X / except ImportError`` ones excluded) belongs to a
  distribution that the built wheel's metadata declares -- unconditionally, unless that
  distribution's own requirements name something the Makefile's venv does not have (fairseq-fixed
  requires torchaudio), in which case it must stay out of the unconditional list so that
  ``pip install .`` never pulls it.
* The wheel installs with ``pip --no-index`` into a fresh venv that sees only the distributions
  its metadata asks for (plus fairseq, installed first as the Makefile does), and its commands
  run there: the console scripts, the packaged paper tables, the PubMed reader.
"""

import ast
import re
import importlib.metadata as md
import os
import shutil
import subprocess
import sys
import zipfile
from email.parser import Parser

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from conftest import REPO

LOCAL = {"biobart_fairseq", "biobart_launch"}


def _optional(node, parents):
    """True for an import inside ``try:`` whose handler catches ImportError (an optional dependency)."""
    for p in parents:
        if isinstance(p, ast.Try) and node in ast.walk(ast.Module(body=p.body, type_ignores=[])):
            for h in p.handlers:
                names = [h.type] if not isinstance(h.type, ast.Tuple) else h.type.elts
                if any(isinstance(n, ast.Name) and n.id in ("ImportError", "ModuleNotFoundError") for n in names):
                    return True
    return False


def imported_modules():
    """{top-level module: [files]} for the third-party imports of the package and the launcher."""
    found = {}
    files = sorted((REPO / "biobart_fairseq").rglob("*.py")) + [REPO / "biobart_launch.py"]
    for path in files:
        tree = ast.parse(path.read_text(), str(path))
        parents = []

        def visit(node):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in LOCAL and not _optional(node, parents):
                    found.setdefault(top, []).append(str(path.relative_to(REPO)))
            parents.append(node)
            for child in ast.iter_child_nodes(node):
                visit(child)
            parents.pop()

        visit(tree)
    return found


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """The wheel built from the current tree (copied out, so no build/ lands in the checkout)."""
    src = tmp_path_factory.mktemp("src")
    for name in ("setup.py", "biobart_launch.py", "README.md"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(REPO / "biobart_fairseq", src / "biobart_fairseq",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = tmp_path_factory.mktemp("wheel")
    res = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                          "--no-index", "-w", str(out), str(src)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    (whl,) = out.glob("biobart_fairseq-*.whl")
    return whl


def wheel_requirements(whl):
    with zipfile.ZipFile(whl) as z:
        (meta,) = [n for n in z.namelist() if n.endswith(".dist-info/METADATA")]
        msg = Parser().parsestr(z.read(meta).decode())
    return [Requirement(r) for r in msg.get_all("Requires-Dist") or []]


def _unconditional(req):
    return req.marker is None or req.marker.evaluate({"extra": ""})


def _missing_requirements(dist_name):
    """Requirements of an installed distribution that are not installed here (extras ignored)."""
    missing = []
    for r in md.requires(dist_name) or []:
        req = Requirement(r)
        if not _unconditional(req):
            continue
        try:
            md.version(req.name)
        except md.PackageNotFoundError:
            missing.append(req.name)
    return missing


def test_every_imported_distribution_is_declared(wheel):
    reqs = wheel_requirements(wheel)
    unconditional = {canonicalize_name(r.name) for r in reqs if _unconditional(r)}
    in_extras = {canonicalize_name(r.name) for r in reqs if not _unconditional(r)}
    module_dists = md.packages_distributions()
    problems = []
    for module, files in sorted(imported_modules().items()):
        dists = module_dists.get(module)
        if not dists:
            problems.append(f"{module} (imported by {files[0]}) is not installed here")
            continue
        dist = canonicalize_name(dists[0])
        missing = _missing_requirements(dists[0])
        if missing:  # it would drag these in: must be a documented extra, never unconditional
            if dist in unconditional or dist not in in_extras:
                problems.append(f"{dist} ({module}) requires {missing}, not installed: declare it as an extra")
        elif dist not in unconditional:
            problems.append(f"{dist} (module {module}, imported by {files[0]}) is not in install_requires")
    assert not problems, "\n".join(problems)
    # the scan itself finds the imports it must (a broken scanner would pass vacuously)
    assert {"torch", "fairseq", "lxml", "pysbd", "numpy", "sklearn", "bert_score"} <= set(imported_modules())


def _closure(names):
    """Installed distributions reachable from ``names`` through unconditional requirements."""
    seen, todo = {}, list(names)
    while todo:
        name = canonicalize_name(todo.pop())
        if name in seen:
            continue
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            continue  # not installed here (torchaudio): the install below shows it is not needed
        seen[name] = dist
        todo += [Requirement(r).name for r in dist.requires or [] if _unconditional(Requirement(r))]
    return seen


def test_wheel_installs_offline_beside_torch_and_fairseq(wheel, tmp_path):
    reqs = wheel_requirements(wheel)
    fairseq = [r.name for r in reqs if not _unconditional(r) and "fairseq" in str(r.marker)]
    dists = _closure([r.name for r in reqs if _unconditional(r)] + fairseq)
    # a folder that holds only those distributions, visible to the fresh venv through a .pth file
    farm = tmp_path / "site"
    farm.mkdir()
    for dist in dists.values():
        for top in {f.parts[0] for f in dist.files or []}:
            src = dist.locate_file(top)
            if top not in ("..", "__pycache__") and not top.endswith(".pth") and src.exists() \
                    and not (farm / top).exists():
                os.symlink(src, farm / top)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    (site,) = venv.glob("lib/python*/site-packages")
    (site / "deps.pth").write_text(f"{farm}\n")
    py = venv / "bin" / "python"
    res = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-index",
                          str(wheel)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr  # nothing to download: every requirement was there

    env = dict(os.environ, PATH=f"{venv / 'bin'}:{os.environ['PATH']}", PYTHONNOUSERSITE="1")
    out = tmp_path / "text"
    for cmd in (["biobart-tables", "--help"],
                ["biobart-prepare-pubmed", str(REPO / "examples/data/pubmed_sample/sample_baseline.xml"),
                 "-o", str(out)],
                ["biobart-tables", str(tmp_path), "--tables", "2", "--format", "csv"]):
        res = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path)
        assert res.returncode == 0, (cmd, res.stderr)
        assert (venv / "bin" / cmd[0]).is_file()
    assert "2,bart-base,covid_dialog,rouge1,27.24," in res.stdout  # the packaged Table 2 (paper: BART BASE 27.24)
    assert (out / "train.txt").stat().st_size > 0
    # the installed copy, not the checkout, is what ran (imported light: registering is tested elsewhere)
    code = "import biobart_launch as L; L.starting_command = True; import biobart_fairseq as B; print(B.__file__)"
    res = subprocess.run([str(py), "-c", code],
                         capture_output=True, text=True, env=env, cwd=tmp_path)
    assert res.returncode == 0 and str(site) in res.stdout, res.stdout + res.stderr


# --- docs and docstrings name only files of this repository -----------------------------------
SUBPACKAGES = "tasks|models|data|decoding|cli|metrics|criterions|optim|modules|convert"
REPO_PATH = re.compile(r"(?<![\w/.-])((?:biobart_fairseq|tests|examples|benchmarks|docs)/[\w./<>*${}-]*[\w>*}])")
PACKAGE_PATH = re.compile(rf"(?<![\w/.-])((?:{SUBPACKAGES})/\w+\.py)\b")
DOC_FILE = re.compile(r"(?<![\w/.-])([A-Z][A-Z_]+\.md)\b")
OUTSIDE = re.compile(r"\.\./shared/(?!data\b)[\w./-]+")
# another project's file (BARTNER's data/pipe.py ...) is named with that project on the same line
EXTERNAL = re.compile(r"BARTNER|GenBioEL|BioSyn|fairseq's|fairseq/|GanjinZero|upstream|Hugging Face|transformers")


def _documentation():
    for path in [REPO / "README.md", REPO / "biobart_launch.py", *sorted((REPO / "docs").glob("*.md")),
                 *sorted((REPO / "biobart_fairseq").rglob("*.py")), *sorted((REPO / "benchmarks").glob("*.*")),
                 *sorted((REPO / "examples").rglob("*.sh"))]:
        yield path, path.read_text(errors="replace").splitlines()


def _missing_files(path, lines):
    for n, line in enumerate(lines, 1):
        for m in REPO_PATH.finditer(line):
            target = m.group(1).rstrip(".")
            if not any(c in target for c in "<>*${") and not (REPO / target).exists():  # placeholders: skip
                yield f"{path.relative_to(REPO)}:{n}: {target}"
        for m in PACKAGE_PATH.finditer(line):
            if not EXTERNAL.search(line) and not (REPO / "biobart_fairseq" / m.group(1)).exists():
                yield f"{path.relative_to(REPO)}:{n}: {m.group(1)}"
        for m in DOC_FILE.finditer(line):
            if not list(REPO.glob(f"**/{m.group(1)}")):
                yield f"{path.relative_to(REPO)}:{n}: {m.group(1)}"
        for m in OUTSIDE.finditer(line):
            yield f"{path.relative_to(REPO)}:{n}: {m.group(0)} (outside the repository)"


def test_docs_name_only_files_in_the_repository():
    problems = [p for path, lines in _documentation() for p in _missing_files(path, lines)]
    assert not problems, "\n".join(problems)


def test_docs_check_finds_what_it_must():
    """The checker flags a deleted module, a note outside the repository and a shared doc."""
    lines = ["see decoding/prefix_constraint.py and ENVIRONMENT.md §3", "(../shared/docs/GPU.md)",
             "biobart_fairseq/data/no_such.py", "BARTNER's data/pipe.py", "tasks/biomed_denoising.py"]
    found = list(_missing_files(REPO / "README.md", lines))
    assert found == ["README.md:1: decoding/prefix_constraint.py", "README.md:1: ENVIRONMENT.md",
                     "README.md:2: ../shared/docs/GPU.md (outside the repository)",
                     "README.md:3: biobart_fairseq/data/no_such.py"]
