// Client-side search over window.SNNEDU_SEARCH (assets/search-index.js, written by .ci/site.py).
// Every word of the query must appear in a section; section titles and page titles weigh more.
(function () {
  var root = document.body.getAttribute('data-root') || '';
  var box = document.getElementById('search'), out = document.getElementById('search-results');
  if (!box || !out) return;
  function esc(s) { return s.replace(/[&<>"']/g, function (c) { return '&#' + c.charCodeAt(0) + ';'; }); }
  function count(hay, word) { var n = 0, i = hay.indexOf(word); while (i !== -1 && n < 20) { n++; i = hay.indexOf(word, i + word.length); } return n; }
  function snippet(text, word) {
    var i = text.toLowerCase().indexOf(word), start = Math.max(0, i - 40);
    return (start > 0 ? '…' : '') + text.slice(start, start + 110) + (text.length > start + 110 ? '…' : '');
  }
  function run(query) {
    var words = query.toLowerCase().split(/\s+/).filter(Boolean);
    if (!words.length) { out.innerHTML = ''; return; }
    var hits = [];
    (window.SNNEDU_SEARCH || []).forEach(function (d) {
      var s = d.s.toLowerCase(), t = d.t.toLowerCase(), hay = t + ' ' + s + ' ' + d.x.toLowerCase();
      if (!words.every(function (w) { return hay.indexOf(w) !== -1; })) return;
      var score = 0;
      words.forEach(function (w) { score += (s.indexOf(w) !== -1 ? 10 : 0) + (t.indexOf(w) !== -1 ? 4 : 0) + count(hay, w); });
      hits.push([score, d]);
    });
    hits.sort(function (a, b) { return b[0] - a[0]; });
    out.innerHTML = hits.length
      ? '<ul>' + hits.slice(0, 15).map(function (h) {
          var d = h[1];
          return '<li><a href="' + root + d.u + '">' + esc(d.s || d.t) + '</a><span class="where">' + esc(d.t) +
                 '</span><span class="snippet">' + esc(snippet(d.x, words[0])) + '</span></li>';
        }).join('') + '</ul>'
      : '<p class="none">No results for “' + esc(query) + '”</p>';
  }
  box.addEventListener('input', function () { run(box.value); });
  var q = new URLSearchParams(window.location.search).get('q');
  if (q) { box.value = q; run(q); }
})();
