"""The documentation site (`python .ci/site.py`), built fresh and checked in headless Chromium.

Every page is opened from a local HTTP server on 127.0.0.1: no console errors, every internal link
answers 200 (and its #anchor exists), every image has loaded (naturalWidth > 0), nothing is fetched
from outside the site, search finds a known term; screenshots go to test-artifacts/.
Needs Debian's chromium + chromium-driver and selenium: skipped locally without them, FAILS in CI. The build itself
needs Node.js and Debian's KaTeX (libjs-katex, the version in .ci/site/katex-deb-version): without them every test
here FAILS, with the build's message saying how to install them.
"""
import configparser, functools, html, http.server, json, os, re, subprocess, sys, threading, time
import urllib.error, urllib.request
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlparse

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get('CHROMIUM', '/usr/bin/chromium')              # Debian package chromium
CHROMEDRIVER = os.environ.get('CHROMEDRIVER', '/usr/bin/chromedriver')  # Debian package chromium-driver
ARTIFACTS = ROOT / 'test-artifacts'
WIDGET = 'application/vnd.jupyter.widget-view+json'
IN_CI = os.environ.get("CI", "").lower() not in ("", "0", "false", "no")

def _settings():
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(ROOT / 'settings.ini', encoding='utf-8')
    return cfg['DEFAULT']

def _missing_browser():
    "Why the browser test cannot run here, or None."
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not (os.path.isfile(p) and os.access(p, os.X_OK))]
    if missing:
        return (f"{' and '.join(missing)} not found: install Chromium with "
                "`apt-get install -y chromium chromium-driver` (Debian) to run the docs-site browser test")
    try: import selenium  # noqa: F401
    except ImportError: return 'selenium is not installed: `pip install -e ".[dev]"` installs it'
    return None

def _need_browser():
    why = _missing_browser()
    if why:
        if IN_CI: pytest.fail(f'CI=true but the browser test cannot run: {why}', pytrace=False)
        pytest.skip(why)

# ---------------------------------------------------------------- fixtures

@pytest.fixture(scope='module')
def site(tmp_path_factory):
    "A fresh build of the site (the documented command, into a temporary folder) and its build time."
    tmp = tmp_path_factory.mktemp('site')
    out, trap, calls = tmp / '_site', tmp / 'bin', tmp / 'calls.txt'
    trap.mkdir()
    for cmd in ('quarto', 'pip', 'pip3', 'sudo'):     # nbdev_docs installs quarto and runs pip; the builder must not
        (trap / cmd).write_text(f'#!/bin/sh\necho {cmd} "$@" >> {calls}\nexit 1\n')
        (trap / cmd).chmod(0o755)
    env = {**os.environ, 'PATH': f'{trap}{os.pathsep}{os.environ.get("PATH", "")}'}
    t0 = time.time()
    res = subprocess.run([sys.executable, str(ROOT / '.ci' / 'site.py'), '--out', str(out)],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    if res.returncode != 0: pytest.fail(f'site build failed:\n{res.stdout}\n{res.stderr}', pytrace=False)
    assert not calls.exists(), f'the build ran {calls.read_text()!r}'
    assert not (ROOT / '_proc').exists() or (ROOT / '_proc').stat().st_mtime < t0, 'the build wrote _proc/'
    return out, time.time() - t0, res.stderr

class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args): pass

@pytest.fixture(scope='module')
def server(site):
    "The built site on http://127.0.0.1:<free port>/, served from a thread."
    handler = functools.partial(_Quiet, directory=str(site[0]))
    httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f'http://127.0.0.1:{httpd.server_address[1]}/'
    httpd.shutdown(); httpd.server_close()

@pytest.fixture(scope='module')
def browser(tmp_path_factory):
    _need_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ('--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
                 '--disable-component-update', '--disable-sync', '--disable-quic', '--disable-dev-shm-usage',
                 '--window-size=1280,1000', f'--user-data-dir={tmp_path_factory.mktemp("chromium-profile")}'):
        opts.add_argument(flag)
    opts.set_capability('goog:loggingPrefs', {'browser': 'ALL'})
    driver = webdriver.Chrome(options=opts, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()

# ---------------------------------------------------------------- helpers

def _open(driver, url):
    "Load `url`, wait for the load event, return the browser console's entries for this page."
    driver.get(url)
    for _ in range(100):
        if driver.execute_script('return document.readyState') == 'complete': break
        time.sleep(0.05)
    return driver.get_log('browser')

def _status(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as r: return r.status, r.read().decode('utf-8', 'replace')
    except urllib.error.HTTPError as e: return e.code, ''

def _outputs_shown(cell):
    "False for a code cell whose leading `#|` directives hide its outputs (hide, include: false, output: false)."
    flags = set()
    for line in ''.join(cell.get('source', '')).splitlines():
        m = re.match(r'\s*#\|\s*(.*?)\s*$', line)
        if not m: break
        flags.add(re.sub(r'\s+', '', m.group(1)))
    return not flags & {'hide', 'include:false', 'output:false'}

def _is_image(data):
    "An output shown as a picture (PNG/JPEG/GIF; a widget's static PNG too), not as HTML or SVG."
    if WIDGET in data: return 'image/png' in data
    return any(k in data for k in ('image/png', 'image/jpeg', 'image/gif')) and not any(
        k in data for k in ('text/html', 'image/svg+xml'))

def _pages(site_dir): return json.loads((site_dir / 'pages.json').read_text())

# ---------------------------------------------------------------- tests that need no browser

def test_build_writes_one_page_per_notebook(site):
    site_dir, seconds, _ = site
    pages = _pages(site_dir)
    nbs = sorted(p.relative_to(ROOT / 'nbs').as_posix() for p in (ROOT / 'nbs').rglob('*.ipynb')
                 if not any(part.startswith(('.', '_')) for part in p.relative_to(ROOT / 'nbs').parts))
    assert sorted(p['notebook'] for p in pages) == nbs
    assert pages[0]['page'] == 'index.html' and pages[0]['notebook'] == 'index.ipynb'
    assert all((site_dir / p['page']).stat().st_size > 0 for p in pages)
    tutorials = [p for p in pages if p['notebook'].startswith('tutorials/')]
    assert [p['notebook'] for p in tutorials] == sorted(p['notebook'] for p in tutorials), 'course pages out of order'
    print(f'\nsite: {len(pages)} pages built in {seconds:.1f} s')

def test_show_doc_cells_execute_as_in_nbdev_docs(site):
    "nbdev (and so `nbdev_docs` for users with quarto) must be able to run every notebook's show_doc cells."
    failed = [block for block in site[2].split('warning: ') if 'Error in notebook' in block]
    if failed: pytest.fail('show_doc cells could not be executed (the site fell back to stored outputs; '
                           '`python .ci/site.py --strict` shows this too):\n' + ''.join(failed), pytrace=False)

def test_pages_hide_directives_and_hidden_cells(site):
    site_dir = site[0]
    for p in _pages(site_dir):
        nb = json.loads((ROOT / 'nbs' / p['notebook']).read_text())
        page = (site_dir / p['page']).read_text()
        code_on_page = html.unescape(re.sub(r'<[^>]+>', '', ' '.join(re.findall(r'<div class="input">(.*?)</div>', page, re.S))))
        assert '#|' not in code_on_page, f"{p['page']}: a `#|` directive line is shown in code"
        for cell in nb['cells']:
            src = ''.join(cell['source'])
            if cell['cell_type'] == 'code' and re.match(r'\s*#\|\s*hide\s*$', src.splitlines()[0] if src else ''):
                body = '\n'.join(l for l in src.splitlines()[1:] if not l.lstrip().startswith('#|')).strip()
                if body: assert body not in code_on_page, f"{p['page']}: hidden cell shown: {body!r}"
        if any(c['cell_type'] == 'code' and re.match(r'\s*#\|\s*export\s*$', ''.join(c['source']).splitlines()[0] if c['source'] else '')
               for c in nb['cells']):
            assert '<summary>Exported source</summary>' in page, f"{p['page']}: exported code is not marked"

def test_pages_state_version_colab_install_and_citation(site):
    site_dir, cfg = site[0], _settings()
    user_repo = re.sub(r'^https?://github\.com/', '', cfg['git_url']).strip('/')
    for p in _pages(site_dir):
        page = (site_dir / p['page']).read_text()
        assert f"v{cfg['version']}" in page, f"{p['page']}: version {cfg['version']} not shown"
        assert 'index.html#install' in page and 'index.html#how-to-cite' in page
        if p['notebook'] != 'index.ipynb':
            colab = f'https://colab.research.google.com/github/{user_repo}/blob/v{cfg["version"]}/nbs/{p["notebook"]}'
            assert f'href="{colab}"' in page, f"{p['page']}: no Open-in-Colab link {colab}"
    home = (site_dir / 'index.html').read_text()
    assert 'id="install"' in home and 'id="how-to-cite"' in home and '@software{' in html.unescape(re.sub(r'<[^>]+>', '', home))
    assert 'pip install' in home

def test_course_pages_have_contents_and_prev_next_links(site):
    "Every course page has an on-page table of contents and previous/next links in the sidebar's order."
    site_dir = site[0]
    pages = _pages(site_dir)
    for k, p in enumerate(pages):
        page = (site_dir / p['page']).read_text()
        pager = re.search(r'<nav class="pager"[^>]*>(.*?)</nav>', page, re.S)
        assert pager, f"{p['page']}: no previous/next links"
        rel = '../' * p['page'].count('/')
        if k > 0: assert f'href="{rel}{pages[k - 1]["page"]}"' in pager.group(1), f"{p['page']}: no link to the previous page"
        if k + 1 < len(pages): assert f'href="{rel}{pages[k + 1]["page"]}"' in pager.group(1), f"{p['page']}: no link to the next page"
        if p['notebook'].startswith('tutorials/'):
            toc = re.search(r'<nav class="toc"[^>]*>(.*?)</nav>', page, re.S)
            assert toc, f"{p['page']}: no table of contents"
            for hid in re.findall(r'href="#([^"]+)"', toc.group(1)):
                assert f'id="{hid}"' in page, f"{p['page']}: contents entry #{hid} has no heading"

def test_course_notebooks_pinned_to_the_release():
    "Every tutorial's Colab badge and install cell name the release of settings.ini (`python .ci/site.py --pin` writes them)."
    cfg = _settings()
    tag = f"v{cfg['version']}"
    for nb_path in sorted((ROOT / 'nbs' / 'tutorials').glob('*.ipynb')):
        src = '\n'.join(''.join(c['source']) for c in json.loads(nb_path.read_text())['cells'])
        badges = re.findall(r'https://colab\.research\.google\.com/github/[^)\s]*', src)
        installs = re.findall(r'%pip install[^\n]*', src)
        name = nb_path.relative_to(ROOT).as_posix()
        assert badges and installs, f'{name}: no Colab badge or no install cell'
        for b in badges: assert f'/blob/{tag}/nbs/tutorials/{nb_path.name}' in b, f'{name}: badge {b} is not pinned to {tag} (run `python .ci/site.py --pin`)'
        for i in installs: assert f'@{tag}"' in i and cfg['git_url'] in i, f'{name}: install cell {i!r} is not pinned to {tag} (run `python .ci/site.py --pin`)'

def test_no_show_doc_source_or_quarto_syntax(site):
    page = (site[0] / 'surrogate.html').read_text()
    assert 'show_doc(' not in page, 'show_doc cells must render as API docs, not code'
    assert 'id="fast_sigmoid"' in page and 'def fast_sigmoid(' in html.unescape(re.sub(r'<[^>]+>', '', page))
    assert '{target=' not in page

# ---------------------------------------------------------------- the browser

def test_every_page_in_chromium(site, server, browser):
    site_dir = site[0]
    pages = _pages(site_dir)
    origin = urlparse(server).netloc
    errors, broken, bad_images, external, checked = [], [], [], [], {}
    n_images, anchors = 0, {}
    for p in pages:
        url = server + p['page']
        log = _open(browser, url)
        errors += [f"{p['page']}: {e['message']}" for e in log if e['level'] == 'SEVERE']
        images = browser.execute_script(
            'return Array.from(document.images).map(i => [i.currentSrc || i.src, i.complete, i.naturalWidth])')
        n_images += len(images)
        bad_images += [f"{p['page']}: {src}" for src, complete, width in images if not (complete and width > 0)]
        nb = json.loads((ROOT / 'nbs' / p['notebook']).read_text())
        n_stored = sum(_is_image(o.get('data', {})) for c in nb['cells'] if _outputs_shown(c) for o in c.get('outputs', []))
        n_plots = browser.execute_script('return document.querySelectorAll("img.output-image").length')
        # the build executes the notebook: a fresh run shows at least the plots the committed notebook stores
        assert n_plots >= n_stored, f"{p['page']}: {n_stored} image outputs in the notebook, {n_plots} plots on the page"
        resources = browser.execute_script(
            'return Array.from(document.querySelectorAll("script[src], link[rel=stylesheet], link[rel=icon], img, iframe, video, audio, source"))'
            '.map(e => e.currentSrc || e.src || e.href)')
        external += [f"{p['page']}: {r}" for r in resources if urlparse(r).scheme not in ('data', '') and urlparse(r).netloc != origin]
        for href in browser.execute_script('return Array.from(document.querySelectorAll("a[href]")).map(a => a.href)'):
            if urlparse(href).netloc != origin: continue
            base, frag = urldefrag(href)
            if base not in checked: checked[base] = _status(base)
            status, body = checked[base]
            if status != 200: broken.append(f"{p['page']} -> {href}: HTTP {status}"); continue
            if frag and base.endswith('.html'):
                ids = anchors.setdefault(base, set(re.findall(r'\bid="([^"]+)"', body)))
                if unquote(frag) not in ids: broken.append(f"{p['page']} -> {href}: no element with id {frag!r}")
    assert not errors, 'console errors:\n' + '\n'.join(errors)
    assert not broken, 'broken internal links:\n' + '\n'.join(broken)
    assert not bad_images, 'images that did not load:\n' + '\n'.join(bad_images)
    assert not external, 'resources fetched from outside the site:\n' + '\n'.join(external)
    assert n_images > 0, 'no plots on any page'
    print(f'\nchromium: {len(pages)} pages, {n_images} images, {len(checked)} internal URLs checked')

def test_search_finds_a_known_term(site, server, browser):
    from selenium.webdriver.common.by import By
    _open(browser, server + 'index.html')
    box = browser.find_element(By.ID, 'search')
    box.clear(); box.send_keys('surrogate')
    hits = []
    for _ in range(50):
        hits = [a.get_attribute('href') for a in browser.find_elements(By.CSS_SELECTOR, '#search-results a')]
        if hits: break
        time.sleep(0.05)
    assert any('surrogate.html' in h for h in hits), f'search for "surrogate" found {hits}'
    box.clear(); box.send_keys('fast_sigmoid')
    time.sleep(0.2)
    hits = [a.get_attribute('href') for a in browser.find_elements(By.CSS_SELECTOR, '#search-results a')]
    assert any(h.endswith('surrogate.html#fast_sigmoid') for h in hits), f'search for "fast_sigmoid" found {hits}'
    box.clear(); box.send_keys('zzqqxxnotaword')
    time.sleep(0.2)
    assert browser.find_elements(By.CSS_SELECTOR, '#search-results a') == []
    assert 'No results' in browser.find_element(By.ID, 'search-results').text
    browser.find_element(By.CSS_SELECTOR, '#search-results')  # still on the page after a miss
    box.clear()

def test_screenshots(site, server, browser):
    "Screenshots of the home page and of a course page (a library page while there is no course yet)."
    pages = _pages(site[0])
    tutorial = next((p for p in pages if p['notebook'].startswith('tutorials/')), None)
    other = tutorial or next(p for p in pages if p['page'] == 'surrogate.html')
    ARTIFACTS.mkdir(exist_ok=True)
    shots = {'site-home.png': 'index.html', f"site-{Path(other['page']).stem.replace('.', '-')}.png": other['page']}
    for name, page in shots.items():
        _open(browser, server + page)
        path = ARTIFACTS / name
        assert browser.save_screenshot(str(path)), f'screenshot of {page} failed'
        assert path.stat().st_size > 10_000, f'{path} is suspiciously small'
    print('\nscreenshots: ' + ', '.join(str((ARTIFACTS / n).relative_to(ROOT)) for n in shots))

# ---------------------------------------------------------------- maths

# What the browser shows for the maths of every page: for each formula, its TeX (KaTeX's annotation, or the
# MathML alttext) and measurements of the parts that converters get wrong. The *visible* rendering is
# measured: KaTeX's HTML when the page has it, else the MathML that the browser lays out itself.
_MATH_JS = r'''
const res = {formulas: 0, underbrace: [], cases: [], sums: [], texts: [], fallbacks: document.querySelectorAll('.math-text, .katex-error').length};
const W = e => e.getBoundingClientRect().width, H = e => e.getBoundingClientRect().height;
const texOf = m => { const a = m.querySelector('annotation[encoding="application/x-tex"]'); return a ? a.textContent : (m.getAttribute('alttext') || ''); };
for (const m of document.querySelectorAll('math')) {
  res.formulas += 1;
  const tex = texOf(m), k = m.closest('.katex'), vis = k ? k.querySelector('.katex-html') : null;
  for (const t of m.querySelectorAll('mtext')) res.texts.push([tex, t.textContent]);
  if (tex.includes('\\underbrace')) {
    const mos = Array.from(m.querySelectorAll('munder > mo')).filter(o => o.textContent.trim() === '\u23DF');
    const bases = mos.map(o => o.parentElement.firstElementChild.textContent.replace(/\s/g, ''));
    const braces = vis ? Array.from(vis.querySelectorAll('.stretchy')).map(s => [W(s), W(s.closest('.munder'))])
                       : mos.map(o => [W(o), W(o.parentElement.firstElementChild)]);
    res.underbrace.push([tex, bases, braces]);
  }
  if (tex.includes('\\begin{cases}')) {
    const rows = Array.from(m.querySelectorAll('mtable')).map(t => t.querySelectorAll('mtr').length);
    let fences;
    if (vis) fences = Array.from(vis.querySelectorAll('.minner')).filter(i => i.querySelector('.mtable'))
                           .map(i => [H(i.querySelector(':scope > .mopen')), H(i.querySelector('.mtable'))]);
    else fences = Array.from(m.querySelectorAll('mtable')).map(t => { const o = t.previousElementSibling; return [o ? H(o) : 0, H(t)]; });
    res.cases.push([tex, rows, fences]);
  }
  if (/\\sum_\{[^}]*\}\^/.test(tex) && m.getAttribute('display') === 'block') {
    const under = m.querySelectorAll('munderover > mo').length;
    const limits = vis ? vis.querySelectorAll('.op-limits').length : under;
    res.sums.push([tex, under, limits]);
  }
}
return res;
'''

def _pages_with(site_dir, needle):
    "Pages whose notebook's markdown contains `needle`."
    out = []
    for p in _pages(site_dir):
        nb = json.loads((ROOT / 'nbs' / p['notebook']).read_text())
        if any(needle in ''.join(c['source']) for c in nb['cells'] if c['cell_type'] == 'markdown'): out.append(p['page'])
    return out

def test_maths_render_correctly(site, server, browser):
    """Every formula renders (no TeX left as text), and the constructs latex2mathml got wrong look right:
    an \\underbrace spans its whole base (not one symbol), a `cases` brace is as tall as its rows, display
    sums put their limits below and above, and `\\_` in `\\text{}` is an underscore, not a backslash."""
    site_dir, problems = site[0], []
    counts = dict(formulas=0, underbrace=0, cases=0, sums=0)
    for page in (p['page'] for p in _pages(site_dir)):
        _open(browser, server + page)
        r = browser.execute_script(_MATH_JS)
        counts['formulas'] += r['formulas']
        if r['fallbacks']: problems.append(f'{page}: {r["fallbacks"]} formula(s) shown as raw TeX (KaTeX could not render them)')
        for tex, text in r['texts']:
            if '\\' in text: problems.append(f'{page}: a backslash is shown in the text {text!r} of {tex!r}')
        for tex, bases, braces in r['underbrace']:
            counts['underbrace'] += 1
            if not braces: problems.append(f'{page}: no under-brace drawn for {tex!r}')
            for brace, base in braces:
                if brace < 0.9 * base: problems.append(f'{page}: the brace of {tex!r} is {brace:.0f}px wide under a {base:.0f}px base')
            for b in bases:
                if len(b) < 2: problems.append(f'{page}: the brace of {tex!r} sits under one symbol ({b!r})')
        for tex, rows, fences in r['cases']:
            counts['cases'] += 1
            if not rows or min(rows) < 2: problems.append(f'{page}: `cases` of {tex!r} is not a table of rows ({rows})')
            if not fences: problems.append(f'{page}: no brace found for the `cases` of {tex!r}')
            for brace, table in fences:
                if brace < 0.8 * table: problems.append(f'{page}: the `cases` brace of {tex!r} is {brace:.0f}px tall beside {table:.0f}px of rows')
        for tex, under, limits in r['sums']:
            counts['sums'] += 1
            if not (under and limits): problems.append(f'{page}: the display sum {tex!r} does not put its limits below and above')
    assert not problems, 'maths rendered wrongly:\n' + '\n'.join(problems)
    # the course has these constructs: the test must have seen them (it is not vacuous)
    assert _pages_with(site_dir, r'\underbrace') and counts['underbrace'] >= 1, counts
    assert _pages_with(site_dir, r'\begin{cases}') and counts['cases'] >= 1, counts
    assert counts['sums'] >= 1 and counts['formulas'] > 100, counts
    print(f"\nmaths: {counts}")

def test_math_check_fails_on_latex2mathml_underbrace(server, browser, site):
    "The check above fails on what the old converter (latex2mathml) wrote for T2's LIF equation."
    old = ('<math xmlns="http://www.w3.org/1998/Math/MathML" display="block" alttext="U[t] = \\underbrace{\\beta\\, U[t-1]}_{\\text{decay}}">'
           '<mrow><mi>U</mi><mo stretchy="false">[</mo><mi>t</mi><mo stretchy="false">]</mo><mo>=</mo><munder><munder><mrow>'
           '<mi>β</mi><mspace width="0.167em"/><mi>U</mi><mo stretchy="false">[</mo><mi>t</mi><mo>−</mo><mn>1</mn>'
           '<mo stretchy="false">]</mo></mrow><mo>⏟</mo></munder><mrow><mtext>decay</mtext></mrow></munder></mrow></math>')
    page = site[0] / 'old-math.html'
    page.write_text(f'<!doctype html><html><head><meta charset="utf-8"></head><body style="font-size:20px">{old}</body></html>')
    try:
        _open(browser, server + 'old-math.html')
        r = browser.execute_script(_MATH_JS)
    finally: page.unlink()
    (tex, bases, braces), = r['underbrace']
    assert braces and any(brace < 0.9 * base for brace, base in braces), f'the old underbrace would pass: {braces}'
