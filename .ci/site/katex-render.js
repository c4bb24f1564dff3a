// Render TeX to HTML + MathML with KaTeX, for the docs site build (.ci/site.py).
// argv[2]: the path of katex.min.js (Debian's libjs-katex); stdin: a JSON array of [tex, displayMode];
// stdout: a JSON array of {html} or {error}, in the same order.
'use strict';
const katex = require(process.argv[2]);
let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => { input += chunk; });
process.stdin.on('end', () => {
  const out = JSON.parse(input).map(([tex, display]) => {
    try {
      return { html: katex.renderToString(tex, { displayMode: display, output: 'htmlAndMathml', throwOnError: true, strict: 'error', trust: false }) };
    } catch (e) {
      return { error: String(e.message || e) };
    }
  });
  process.stdout.write(JSON.stringify(out));
});
