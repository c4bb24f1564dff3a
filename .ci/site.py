#!/usr/bin/env python3
"""Build the documentation site from the notebooks in nbs/ into _site/, offline, without quarto.

  python .ci/site.py                   build _site/ (open _site/index.html, or serve it:
                                       python -m http.server -d _site)
  python .ci/site.py --out DIR         build into DIR instead
  python .ci/site.py --strict          fail if nbdev cannot execute a notebook's show_doc cells
  python .ci/site.py --stored          do not execute the notebooks: show their stored outputs (quick preview)
  python .ci/site.py --refresh NB...   execute notebooks and write their fresh outputs back (then nbdev_clean)
  python .ci/site.py --pin             Colab badges and install cells of the course -> v<version> (settings.ini)

Every notebook is executed for the build (as nbdev_test runs it: IN_TEST=1, `#| eval: false` and `#| slow`
cells skipped), so a page shows what the current code prints, never an output stored months ago; a notebook
that fails to run fails the build.

nbdev's own site builder (`nbdev_docs`) needs quarto, which cannot be installed on every machine;
users who have quarto can keep using `nbdev_docs` (it writes _docs/ and touches nothing here).
This builder reads the same notebooks and runs the same nbdev doc processors (nbdev.processors:
frontmatter, show_doc cells executed and rendered as signature docs, hidden cells dropped,
exported cells folded as "Exported source"), then writes one static HTML page per notebook with
our own small template (.ci/site/): a sidebar on every page, client-side search over a JS index,
the version from settings.ini, and an "Open in Colab" link on every notebook page.
Markdown is rendered with mistune, code with pygments, and LaTeX with KaTeX at build time (HTML with
KaTeX's fonts for the eye, MathML for screen readers): `node .ci/site/katex-render.js` runs Debian's KaTeX
(`apt-get install nodejs libjs-katex=<.ci/site/katex-deb-version>`, which .ci/run does; set KATEX_DIR to use
another copy of KaTeX's dist/ folder). The build fails, saying how to install it, when KaTeX is missing or
another version. Pages load nothing from the internet.

Where this differs from nbdev_docs on purpose: `#| export` cells are shown (folded, "Exported
source", as nbdev does for `#| exports`), magics such as `%pip install` are shown, and images or
stylesheets from the internet in notebooks (a Colab badge, matplotlib's font-awesome link) are
replaced by text. Nothing under nbs/ is written, and there is no _proc/ folder.
"""
import argparse, base64, configparser, html, json, os, re, shutil, subprocess, sys, time, warnings
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from string import Template

ROOT = Path(__file__).resolve().parents[1]
ASSETS = Path(__file__).resolve().parent / 'site'
NBS = ROOT / 'nbs'
MARKER = '.snnedu-site'            # marks a folder this script wrote, so it may replace it

# ---------------------------------------------------------------- settings and notebooks

def settings():
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(ROOT / 'settings.ini', encoding='utf-8')
    return dict(cfg['DEFAULT'])

def notebooks():
    "Every notebook under nbs/ (not checkpoints, not files or folders starting with `_` or `.`): index, course, library."
    found = [p for p in NBS.rglob('*.ipynb')
             if not any(part.startswith(('.', '_')) for part in p.relative_to(NBS).parts)]
    rank = {None: 0, 'Course': 1, 'Library': 2}
    return sorted(found, key=lambda p: (rank.get(section_of(p.relative_to(NBS)), 3), str(p.relative_to(NBS))))

def section_of(rel):
    "Sidebar section for a notebook path relative to nbs/."
    if rel == Path('index.ipynb'): return None
    if len(rel.parts) == 1: return 'Library'
    return {'tutorials': 'Course'}.get(rel.parts[0], rel.parts[0].replace('_', ' ').title())

# ---------------------------------------------------------------- 1. nbdev processing (worker process)

_re_export = re.compile(r'^(\s*#\|\s*)export(?=\s|$)', re.M)
_re_showdoc_heading = re.compile(r'^(#{1,6} )(.*)$', re.M)

class ExecutionError(Exception): pass

def execute(raw, path):
    """Run the code cells of the notebook dict `raw` (read from `path`) top to bottom, as `nbdev_test` does
    (cwd = the notebook's folder, `IN_TEST=1`, cells with `#| eval: false` or a `tst_flags` flag such as `#| slow`
    skipped), and store the fresh outputs in `raw`. A skipped cell keeps its stored output. Returns the seconds it took;
    raises `ExecutionError` naming the notebook and the cell on the first error."""
    from execnb.nbio import dict2nb, nb2dict
    from execnb.shell import CaptureShell
    skip = set(settings().get('tst_flags', '').split())
    nb = dict2nb(json.loads(json.dumps(raw)))
    shell, t0, cwd = CaptureShell(path, mpl_format='png'), time.time(), os.getcwd()
    os.chdir(Path(path).parent)
    try:
        for cell in nb.cells:
            if cell.cell_type != 'code': continue
            d, _ = directives(cell.source)
            if d.get('eval', '').lower() == 'false' or skip & set(d): continue     # keeps what is stored
            cell.outputs = []
            shell.cell(cell)
            if shell.exc:
                tb = _re_ansi.sub('', ''.join(shell.prettytb(fname=path)))
                raise ExecutionError(f'{Path(path).relative_to(ROOT)}: cell {cell.idx_} raised {type(shell.exc).__name__}\n{tb}')
    finally: os.chdir(cwd)
    fresh = nb2dict(nb)['cells']
    for cell, new in zip(raw['cells'], fresh):
        if cell['cell_type'] == 'code':
            cell['outputs'] = [dict(o) for o in new.get('outputs', [])]
    return time.time() - t0

def process_nb(path, strict=False, run=True):
    """Run nbdev's documentation processors on the notebook at `path`; return (notebook dict, warning or None).

    `#| export` cells are treated like nbdev's `#| exports`: their code stays on the page, folded
    under "Exported source" after the API doc, because the code is what the notebooks teach."""
    os.chdir(ROOT)
    if str(ROOT) not in sys.path: sys.path.insert(0, str(ROOT))
    os.environ.setdefault('MPLBACKEND', 'Agg')
    os.environ['IN_TEST'] = '1'                      # as nbdev's own processing driver does
    warnings.filterwarnings('ignore', message='Found cells containing imports')

    main_module = sys.modules['__main__']            # IPython's shell (show_doc execution) replaces it
    try: return _process_nb(path, strict, run)
    finally: sys.modules['__main__'] = main_module

HINT = ("nbdev executes every cell that imports something (and every exported cell) to render show_doc; "
        "if such a cell also runs code that needs earlier cells, move the imports into a cell of their own "
        "(nbdev FAQ: 'Found cells containing imports and other code'). nbdev_docs fails on this notebook the same way.")

def _process_nb(path, strict, run):
    from execnb.nbio import dict2nb, nb2dict
    from nbdev.processors import FilterDefaults, exec_show_docs, add_show_docs, clean_magics

    class SiteProcs(FilterDefaults):
        "nbdev's processors, but magics such as a tutorial's `%pip install` stay visible."
        def base_procs(self): return [p for p in super().base_procs() if p is not clean_magics]
    raw = json.loads(Path(path).read_text(encoding='utf-8'))
    seconds = None
    if run:
        try: seconds = execute(raw, path)
        except ExecutionError as e: return None, f'executing {e}', None
    for cell in raw['cells']:
        if cell['cell_type'] == 'code':
            cell['source'] = _re_export.sub(r'\1exports', ''.join(cell['source']))
    # nbdev's mv_exports looks at the cell after each exports cell: make sure there is one
    raw['cells'].append({'cell_type': 'markdown', 'metadata': {}, 'source': '<!-- end of notebook -->'})
    try:
        nb = dict2nb(json.loads(json.dumps(raw)))
        nb.path_ = str(path)
        SiteProcs()(nb)
        return nb2dict(nb), None, seconds
    except Exception as e:
        cause = f'{type(e.__cause__).__name__}: {e.__cause__}' if e.__cause__ else type(e).__name__
        error = f'{Path(path).relative_to(ROOT)}: {e}\n  -> {cause}\n  {HINT}'
        if strict: return None, error, seconds
        # keep the outputs stored in the notebook (show_doc cells were executed when it was saved)
        class Stored(SiteProcs):
            def base_procs(self): return [p for p in super().base_procs() if p not in (exec_show_docs, add_show_docs)]
        nb = dict2nb(raw)
        nb.path_ = str(path)
        Stored()(nb)
        return nb2dict(nb), f'{error}\n  (show_doc cells shown with the outputs stored in the notebook; --strict makes this an error)', seconds

# ---------------------------------------------------------------- 2. markdown, math, code

def slug(text):
    "Pandoc/quarto heading id: lower case, drop all but letters, digits, `_-.`, spaces to `-`, from the first letter."
    text = html.unescape(re.sub(r'<[^>]+>', '', text)).lower()
    text = re.sub(r'[^\w\s.-]', '', text).strip()
    text = re.sub(r'\s+', '-', text)
    text = re.sub(r'^[^a-z]+', '', text)
    return text or 'section'

# Maths: while pages render, every formula becomes a placeholder; then one node process renders all of them
# with KaTeX (HTML for the eye + MathML for screen readers, fonts and CSS copied into the site), and the
# placeholders are replaced. KaTeX is Debian's libjs-katex, at the version .ci/site/katex-deb-version pins.
MATHS = []                                           # (tex, display) of every formula, in placeholder order
_re_math_token = re.compile('\x02M(\\d+)\x03')
KATEX_JS = ASSETS / 'katex-render.js'
KATEX_DEB = (ASSETS / 'katex-deb-version').read_text().strip()      # e.g. 0.16.4+~cs6.1.0-1
KATEX_VERSION = KATEX_DEB.split('+')[0]                             # KaTeX's own version: 0.16.4

def math_token(tex, display):
    "A placeholder for one formula, rendered by `render_maths` once all pages are built."
    MATHS.append((tex.strip(), display))
    return f'\x02M{len(MATHS) - 1}\x03'

def katex_dir():
    "KaTeX's folder (katex.min.js, katex.min.css, fonts/), checked to hold the pinned version; exits saying how to install it."
    d = Path(os.environ.get('KATEX_DIR', '/usr/share/javascript/katex'))
    install = (f'install it with `apt-get install -y nodejs libjs-katex={KATEX_DEB}` (Debian 12; .ci/run does this), '
               "or point KATEX_DIR at a folder holding KaTeX's katex.min.js, katex.min.css and fonts/")
    node = shutil.which('node')
    if not node: sys.exit(f'the site renders its maths with KaTeX on Node.js, and `node` is not on PATH: {install}')
    if not (d / 'katex.min.js').is_file(): sys.exit(f'KaTeX not found at {d}: {install}')
    res = subprocess.run([node, '-e', 'process.stdout.write(require(process.argv[1]).version)', str(d / 'katex.min.js')],
                         capture_output=True, text=True)
    if res.returncode != 0: sys.exit(f'node could not load {d / "katex.min.js"}:\n{res.stderr}')
    if res.stdout != KATEX_VERSION: sys.exit(f'KaTeX at {d} is version {res.stdout}, this site is built with {KATEX_VERSION}: {install}')
    return d

def render_maths(items, strict=False):
    "HTML of each (tex, display) in `items`, rendered by KaTeX in one node process; a formula KaTeX rejects is shown as TeX."
    if not items: return []
    katex = katex_dir() / 'katex.min.js'
    res = subprocess.run(['node', str(KATEX_JS), str(katex)], input=json.dumps(items), capture_output=True, text=True)
    if res.returncode != 0: sys.exit(f'KaTeX failed:\n{res.stderr}')
    out, bad = [], []
    for (tex, display), r in zip(items, json.loads(res.stdout)):
        if 'html' in r: out.append(r['html']); continue
        bad.append(f'  {tex!r}: {r["error"]}')
        tag = 'div' if display else 'span'
        out.append(f'<{tag} class="math-text">{html.escape(tex)}</{tag}>')
    if bad:
        msg = 'KaTeX could not render these formulas (shown as TeX):\n' + '\n'.join(bad)
        if strict: sys.exit('FAIL: ' + msg)
        print('warning: ' + msg, file=sys.stderr)
    return out

def copy_katex_assets(out):
    "KaTeX's stylesheet and its woff2 fonts (what every current browser loads) into assets/katex/."
    src, dest = katex_dir(), out / 'assets' / 'katex' / 'fonts'
    dest.mkdir(parents=True)
    shutil.copy2(src / 'katex.min.css', dest.parent / 'katex.min.css')
    for font in (src / 'fonts').glob('*.woff2'): shutil.copy2(font, dest / font.name)

def highlight(code, lang='python'):
    from pygments import highlight as hl
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import get_lexer_by_name, TextLexer
    try: lexer = get_lexer_by_name(lang or 'text')
    except Exception: lexer = TextLexer()
    return hl(code, lexer, HtmlFormatter(cssclass='highlight'))

class Markdown:
    "mistune 3 with tables, math as MathML, pygments code blocks and quarto-style heading ids."
    def __init__(self):
        import mistune
        from mistune.renderers.html import HTMLRenderer
        outer = self
        class Renderer(HTMLRenderer):
            def heading(self, text, level, **attrs):
                hid = outer.unique(slug(text))
                return f'<h{level} id="{hid}"><a class="anchor" href="#{hid}">{text}</a></h{level}>\n'
            def block_code(self, code, info=None):
                return highlight(code, (info or '').split()[0] if info else 'text')
        self.md = mistune.create_markdown(renderer=Renderer(escape=False), plugins=['table', 'strikethrough', 'math', 'url'])
        self.md.renderer.register('block_math', lambda r, text: f'<div class="math-block">{math_token(text, True)}</div>\n')
        self.md.renderer.register('inline_math', lambda r, text: math_token(text, False))
        self.ids = set()

    def unique(self, hid):
        base, n = hid, 1
        while hid in self.ids: hid, n = f'{base}-{n}', n + 1
        self.ids.add(hid)
        return hid

    def __call__(self, text): return self.md(text)

_re_quarto_attrs = re.compile(r'\]\(([^)\s]+)\)\{[^}\n]*\}')

def showdoc_markdown(text):
    "nbdev's show_doc markdown, minus quarto-only syntax: `[source](url){target=...}` and `_` in headings."
    text = _re_quarto_attrs.sub(r'](\1)', text)
    return _re_showdoc_heading.sub(lambda m: m.group(1) + m.group(2).replace('_', r'\_'), text)

# ---------------------------------------------------------------- 3. cells to HTML

_re_ansi = re.compile(r'\x1B(?:[@-Z\\-_]|\[[0-?]*[ -/]*[@-~])')
_re_directive = re.compile(r'^\s*#\|\s*([\w-]+)\s*:?\s*(.*?)\s*$')
WIDGET = 'application/vnd.jupyter.widget-view+json'

def directives(source):
    "Leading `#| key: value` lines -> ({key: value}, source without them)."
    lines, found = source.splitlines(), {}
    while lines and (m := _re_directive.match(lines[0])):
        found[m.group(1)] = m.group(2).strip('"\'')
        lines.pop(0)
    return found, '\n'.join(lines).strip('\n')

_re_external = re.compile(r'<link\b[^>]*\bhref=["\']https?://[^>]*>|<script\b[^>]*\bsrc=["\']https?://[^>]*>\s*</script>', re.I | re.S)

def offline_html(text, page):
    "HTML output minus stylesheets and scripts from the internet (matplotlib's jshtml links font-awesome from a CDN)."
    for m in _re_external.findall(text):
        if 'font-awesome' not in m: print(f"  warning: {page['nb']}: dropped an external resource from an HTML output: {m[:120]}", file=sys.stderr)
    return _re_external.sub('', text)

_re_external_img = re.compile(r'<img\b[^>]*?\bsrc="(https?://[^"]*)"[^>]*>', re.I)

def offline_images(body, page):
    "Images from the internet (a notebook's own Colab badge, say) become text badges: pages load nothing from outside."
    def badge(m):
        alt = re.search(r'\balt="([^"]*)"', m.group(0))
        alt = alt.group(1) if alt else 'image'
        if 'colab-badge' not in m.group(1):
            print(f"warning: {page['nb']}: external image {m.group(1)} shown as its alt text {alt!r}", file=sys.stderr)
        kind = ' colab' if 'colab' in m.group(1) else ''
        return f'<span class="badge{kind}" title="{m.group(1)}">{alt}</span>'
    body = _re_external_img.sub(badge, body)
    # the notebook's own "Open in Colab" badge repeats the one in the page header
    return re.sub(r'<p>\s*<a href="https://colab\.research\.google\.com/[^"]*">\s*<span class="badge colab"[^>]*>[^<]*</span>\s*</a>\s*</p>', '', body)

def text_of(v): return ''.join(v) if isinstance(v, list) else v

class PageRenderer:
    def __init__(self, page, site_dir):
        self.page, self.site_dir, self.md, self.n_fig = page, site_dir, Markdown(), 0

    def figure(self, data_b64, ext):
        self.n_fig += 1
        name = f"{self.page['out'].with_suffix('').as_posix().replace('/', '-')}-{self.n_fig}.{ext}"
        (self.site_dir / 'figures' / name).write_bytes(base64.b64decode(text_of(data_b64)))
        return f'{self.page["root"]}figures/{name}'

    def output(self, out, asis):
        kind = out.get('output_type')
        if kind == 'stream':
            return f'<pre class="output stream {out.get("name", "")}">{html.escape(_re_ansi.sub("", text_of(out["text"])))}</pre>'
        if kind == 'error':
            tb = _re_ansi.sub('', '\n'.join(out.get('traceback', [])) or f"{out.get('ename')}: {out.get('evalue')}")
            return f'<pre class="output error">{html.escape(tb)}</pre>'
        data = out.get('data', {})
        if WIDGET in data:   # the widget's static picture (when it has one), with a note on where it comes alive
            note = '<p class="output widget-note">Interactive widget: open this notebook in Jupyter or Colab to use it.</p>'
            if 'image/png' not in data: return note
            return note + f'<div class="output image"><img class="output-image" src="{self.figure(data["image/png"], "png")}" alt="figure {self.n_fig} of {html.escape(self.page["title"])}"></div>'
        if 'text/html' in data: return f'<div class="output html">{offline_html(text_of(data["text/html"]), self.page)}</div>'
        if 'image/svg+xml' in data: return f'<div class="output image">{text_of(data["image/svg+xml"])}</div>'
        for mime, ext in (('image/png', 'png'), ('image/jpeg', 'jpg'), ('image/gif', 'gif')):
            if mime in data:
                return f'<div class="output image"><img class="output-image" src="{self.figure(data[mime], ext)}" alt="figure {self.n_fig + 1} of {html.escape(self.page["title"])}"></div>'
        if 'text/markdown' in data:
            text = text_of(data['text/markdown'])
            cls = 'showdoc' if asis else 'output markdown'
            return f'<div class="{cls}">{self.md(showdoc_markdown(text) if asis else text)}</div>'
        if 'text/latex' in data: return f'<div class="output math-block">{math_token(text_of(data["text/latex"]).strip("$"), True)}</div>'
        if 'text/plain' in data: return f'<pre class="output text">{html.escape(text_of(data["text/plain"]))}</pre>'
        return ''

    def cell(self, cell):
        src = text_of(cell.get('source', ''))
        if cell['cell_type'] == 'markdown':
            return f'<div class="cell markdown">{self.md(src)}</div>' if src.strip() else ''
        if cell['cell_type'] != 'code': return ''
        d, code = directives(src)
        if 'hide' in d or d.get('include') == 'false': return ''
        parts = []
        if code and d.get('echo') != 'false':
            block = highlight(code)
            if d.get('code-summary'):
                block = f'<details class="exported" open><summary>{html.escape(d["code-summary"])}</summary>{block}</details>'
            parts.append(f'<div class="input">{block}</div>')
        if d.get('output') != 'false':
            parts += [self.output(o, d.get('output') == 'asis') for o in cell.get('outputs', [])]
        parts = [p for p in parts if p]
        return f'<div class="cell code">{"".join(parts)}</div>' if parts else ''

def frontmatter(nb):
    import yaml
    for cell in nb['cells']:
        src = text_of(cell.get('source', '')).strip()
        if cell['cell_type'] == 'raw' and src.startswith('---'):
            return yaml.safe_load(src.strip('-\n')) or {}
    return {}

# ---------------------------------------------------------------- 4. links, pages, search

def rewrite_links(body, page, pages_by_nb, doc_base, ids):
    """nbdev doc links (doc_host + doc_baseurl) and links to .ipynb files become relative links between pages.

    nbdev also links names that have no documentation anchor (private helpers such as `_step`);
    those links are dropped and their text kept, so that no link on the site points nowhere."""
    def unlink(m):
        url = html.unescape(m.group(1))
        if not (doc_base and url.startswith(doc_base)): return m.group(0)
        target, _, frag = url[len(doc_base):].partition('#')
        if frag and frag not in ids.get(target or 'index.html', ()): return m.group(2)
        return m.group(0)
    body = re.sub(r'<a href="([^"]*)">(.*?)</a>', unlink, body, flags=re.S)
    def fix(m):
        attr, url = m.group(1), html.unescape(m.group(2))
        path, _, frag = url.partition('#')
        target = None
        if doc_base and url.startswith(doc_base): target = url[len(doc_base):].lstrip('/').partition('#')[0] or 'index.html'
        elif not re.match(r'^[a-z][\w+.-]*:|^/|^#', url) and path.endswith('.ipynb'):
            nb = (NBS / page['nb']).parent / path
            rel = Path(os.path.normpath(nb)).relative_to(NBS) if os.path.normpath(nb).startswith(str(NBS)) else None
            if rel in pages_by_nb: target = pages_by_nb[rel]['out'].as_posix()
            else: print(f'  warning: {page["nb"]}: link to {url} has no page', file=sys.stderr)
        if target is None: return m.group(0)
        return f'{attr}="{html.escape(page["root"] + target + ("#" + frag if frag else ""))}"'
    return re.sub(r'\b(href|src)="([^"]*)"', fix, body)

def search_entries(body, page):
    "One search entry per h2/h3 section of a page: page title, section title, link, plain text."
    def plain(s): return re.sub(r'\s+', ' ', html.unescape(re.sub(r'<[^>]+>', ' ', s))).strip()
    body = _re_math_token.sub(lambda m: ' ' + html.escape(MATHS[int(m.group(1))][0]) + ' ', body)
    body = re.sub(r'<(math|script|style)\b.*?</\1>', ' ', body, flags=re.S)
    parts = re.split(r'(<h[23] id="[^"]+">.*?</h[23]>)', body, flags=re.S)
    entries, head, anchor = [], '', ''
    for part in parts:
        m = re.match(r'<h[23] id="([^"]+)">(.*?)</h[23]>', part, flags=re.S)
        if m: head, anchor = plain(m.group(2)), m.group(1); continue
        text = plain(part)
        if text or head:
            entries.append({'t': page['title'], 's': head, 'u': page['out'].as_posix() + (f'#{anchor}' if anchor else ''), 'x': text[:1500]})
    return entries

def nav_html(pages, current):
    out, section = [], ()
    for p in pages:
        if p['section'] != section:
            if out: out.append('</ul>')
            section = p['section']
            if section: out.append(f'<h2 class="nav-section">{html.escape(section)}</h2>')
            out.append('<ul class="nav">')
        cur = ' class="current" aria-current="page"' if p is current else ''
        out.append(f'<li><a{cur} href="{current["root"]}{p["out"].as_posix()}">{html.escape(p["nav"])}</a></li>')
    out.append('</ul>')
    return '\n'.join(out)

def toc_html(body):
    "An on-page table of contents from the page's h2/h3 headings (none for a page with fewer than three)."
    heads = re.findall(r'<h([23]) id="([^"]+)">(.*?)</h\1>', body, flags=re.S)
    if len(heads) < 3: return ''
    items = []
    for level, hid, text in heads:
        label = html.escape(re.sub(r'\s+', ' ', html.unescape(re.sub(r'<[^>]+>', '', text))).strip())
        items.append(f'<li class="toc-h{level}"><a href="#{hid}">{label}</a></li>')
    return '<nav class="toc" aria-label="On this page"><h2 class="toc-title">On this page</h2><ul>' + ''.join(items) + '</ul></nav>'

def pager_html(pages, k):
    "Previous / next links in the sidebar's order (the course pages lead from one tutorial to the next)."
    root, links = pages[k]['root'], []
    if k > 0: links.append(f'<a class="prev" rel="prev" href="{root}{pages[k - 1]["out"].as_posix()}">← {html.escape(pages[k - 1]["nav"])}</a>')
    if k + 1 < len(pages): links.append(f'<a class="next" rel="next" href="{root}{pages[k + 1]["out"].as_posix()}">{html.escape(pages[k + 1]["nav"])} →</a>')
    return f'<nav class="pager" aria-label="Previous and next page">{"".join(links)}</nav>'

def course_ref(cfg):
    """The git tag a course page's Colab link and install cell use: `v` + settings.ini's `version`, the one place
    that defines it (a teacher who freezes a semester pins one release; `--pin` rewrites the notebooks)."""
    return f"v{cfg['version']}"

def colab_url(cfg, rel):
    user_repo = re.sub(r'^https?://github\.com/', '', cfg['git_url']).strip('/').removesuffix('.git')
    return f"https://colab.research.google.com/github/{user_repo}/blob/{course_ref(cfg)}/nbs/{rel.as_posix()}"

_re_install = re.compile(r'%pip install -q "snnedu(\[[\w,]*\])? @ git\+[^"@]*(@[^"]*)?"')
_re_badge = re.compile(r'\(https://colab\.research\.google\.com/github/[^)]*/nbs/([^)]+\.ipynb)\)')

def pin(paths=None):
    "Rewrite the Colab badge and the install cell of every course notebook to the version in settings.ini."
    cfg = settings()
    paths = [Path(p).resolve() for p in paths] if paths else sorted((NBS / 'tutorials').glob('*.ipynb'))
    for path in paths:
        raw, changed = json.loads(path.read_text(encoding='utf-8')), False
        for cell in raw['cells']:
            src = ''.join(cell['source'])
            new = _re_badge.sub(lambda m: f'({colab_url(cfg, Path(m.group(1)))})', src)
            new = _re_install.sub(lambda m: f'%pip install -q "snnedu{m.group(1) or ""} @ git+{cfg["git_url"]}@{course_ref(cfg)}"', new)
            if new != src: cell['source'], changed = new.splitlines(keepends=True), True
        if changed:
            path.write_text(json.dumps(raw, indent=1, ensure_ascii=False) + '\n', encoding='utf-8')
            print(f'{path.relative_to(ROOT)}: pinned to {course_ref(cfg)}')

# ---------------------------------------------------------------- 5. the build

def prepare_out(out):
    if out.exists():
        if not (out / MARKER).exists() and any(out.iterdir()):
            sys.exit(f'{out} exists and was not written by this script; choose another --out or remove it')
        shutil.rmtree(out)
    (out / 'figures').mkdir(parents=True)
    (out / 'assets').mkdir()
    (out / MARKER).write_text('written by .ci/site.py; deleted and rebuilt on every build\n')

def build(out, strict=False, jobs=None, run=True):
    t0 = time.time()
    cfg = settings()
    out = Path(out).resolve()
    nbs = notebooks()
    if not nbs: sys.exit('no notebooks found in nbs/')
    jobs = jobs or min(len(nbs), os.cpu_count() or 1, 4)
    # worker processes keep the notebooks' execution (torch, matplotlib...) out of this one; the course
    # notebooks (the slow ones) are handed out first
    order = sorted(range(len(nbs)), key=lambda i: section_of(nbs[i].relative_to(NBS)) != 'Course')
    with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context('spawn')) as ex:
        done = list(ex.map(process_nb, [nbs[i] for i in order], [strict] * len(nbs), [run] * len(nbs)))
    results = [None] * len(nbs)
    for i, r in zip(order, done): results[i] = r
    failed = [err for nb, err, _ in results if nb is None]
    if failed: sys.exit('FAIL: notebooks could not be executed:\n' + '\n'.join(failed))
    if run:
        slow = sorted(((sec, p.relative_to(NBS).as_posix()) for p, (_, _, sec) in zip(nbs, results)), reverse=True)[:5]
        print(f'executed {len(nbs)} notebooks; slowest: ' + ', '.join(f'{n} {sec:.0f} s' for sec, n in slow))
    prepare_out(out)

    pages = []
    for path, (nb, warning, _) in zip(nbs, results):
        if warning: print(f'warning: {warning}', file=sys.stderr)
        rel = path.relative_to(NBS)
        fm = frontmatter(nb)
        out_rel = rel.parent / fm.get('output-file', rel.with_suffix('.html').name)
        title = str(fm.get('title') or rel.stem)
        pages.append(dict(nb=rel, nbdict=nb, out=out_rel, title=title, description=str(fm.get('description') or ''),
                          section=section_of(rel), nav='Home' if rel == Path('index.ipynb') else title,
                          root='../' * (len(out_rel.parts) - 1)))
    outs = [p['out'] for p in pages]
    if len(set(outs)) != len(outs):
        sys.exit(f'two notebooks give the same page: {sorted(o.as_posix() for o in outs if outs.count(o) > 1)}')
    by_nb = {p['nb']: p for p in pages}
    doc_base = cfg.get('doc_host', '').rstrip('/') + '/' + cfg.get('doc_baseurl', '').strip('/') + '/'
    template = Template((ASSETS / 'page.html').read_text(encoding='utf-8'))
    user_repo = re.sub(r'^https?://github\.com/', '', cfg['git_url']).strip('/')
    index, n_figs, ids = [], 0, {}
    for p in pages:
        r = PageRenderer(p, out)
        p['body'] = '\n'.join(filter(None, (r.cell(c) for c in p['nbdict']['cells'])))
        ids[p['out'].as_posix()] = r.md.ids
        n_figs += r.n_fig
    maths = render_maths(MATHS, strict)
    stamp = time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())
    for k, p in enumerate(pages):
        body = offline_images(rewrite_links(p['body'], p, by_nb, doc_base, ids), p)
        index += search_entries(body, p)
        body = _re_math_token.sub(lambda m: maths[int(m.group(1))], body)
        is_index = p['nb'] == Path('index.ipynb')
        links = [] if is_index else [
            f'<a class="badge colab" href="{html.escape(colab_url(cfg, p["nb"]))}">Open in Colab</a>',
            f'<a class="badge source" href="{html.escape(cfg["git_url"])}/blob/{cfg.get("branch", "main")}/nbs/{p["nb"].as_posix()}">Notebook source</a>']
        page_html = template.substitute(
            title=html.escape(p['title']), description=html.escape(p['description']), project=html.escape(cfg['lib_name']),
            version=html.escape(cfg['version']), root=p['root'], nav=nav_html(pages, p), body=body,
            badges=' '.join(links), git_url=html.escape(cfg['git_url']), source=html.escape(p['nb'].as_posix()),
            copyright=html.escape(cfg.get('copyright', '')), user_repo=html.escape(user_repo),
            toc=toc_html(body), pager=pager_html(pages, k),
            outputs=f'outputs from a run at build time, {stamp}' if run else 'outputs as stored in the notebook')
        dest = out / p['out']
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(page_html, encoding='utf-8')

    from pygments.formatters import HtmlFormatter
    (out / 'assets' / 'pygments.css').write_text(HtmlFormatter(style='default').get_style_defs('.highlight'), encoding='utf-8')
    for name in ('style.css', 'search.js'): shutil.copy2(ASSETS / name, out / 'assets' / name)
    copy_katex_assets(out)
    (out / 'assets' / 'search-index.js').write_text(
        'window.SNNEDU_SEARCH = ' + json.dumps(index, ensure_ascii=False, separators=(',', ':')) + ';\n', encoding='utf-8')
    (out / 'pages.json').write_text(json.dumps(
        [{'notebook': p['nb'].as_posix(), 'page': p['out'].as_posix(), 'title': p['title'], 'section': p['section']} for p in pages], indent=1))
    dt = time.time() - t0
    print(f'built {len(pages)} pages, {n_figs} figures, {len(index)} search entries into {out} in {dt:.1f} s')
    return pages

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--out', default=str(ROOT / '_site'), help='output folder (default: _site/)')
    ap.add_argument('--strict', action='store_true', help="fail when nbdev cannot execute a notebook's show_doc cells")
    ap.add_argument('--jobs', type=int, default=None, help='notebooks processed in parallel (default: min(#notebooks, #cpus, 4))')
    ap.add_argument('--stored', action='store_true', help='do not execute the notebooks: show the outputs stored in them (a quick preview)')
    ap.add_argument('--refresh', nargs='+', metavar='NOTEBOOK', help='execute these notebooks and write the fresh outputs back into them (then run nbdev_clean); builds nothing')
    ap.add_argument('--pin', nargs='*', metavar='NOTEBOOK', help="point the course notebooks' Colab badges and install cells at v<version> of settings.ini (all tutorials by default); builds nothing")
    a = ap.parse_args(argv)
    if a.pin is not None: return pin(a.pin)
    if a.refresh: return refresh(a.refresh)
    build(a.out, strict=a.strict, jobs=a.jobs, run=not a.stored)

def refresh(paths):
    "Execute each notebook as the site build does and store its fresh outputs in the notebook file."
    os.environ['IN_TEST'] = '1'
    if str(ROOT) not in sys.path: sys.path.insert(0, str(ROOT))
    for p in map(lambda p: Path(p).resolve(), paths):
        raw = json.loads(p.read_text(encoding='utf-8'))
        try: seconds = execute(raw, p)
        except ExecutionError as e: sys.exit(f'FAIL: {e}')
        p.write_text(json.dumps(raw, indent=1, ensure_ascii=False) + '\n', encoding='utf-8')
        print(f'{p.relative_to(ROOT)}: outputs refreshed ({seconds:.0f} s)')

if __name__ == '__main__': main()
