(function () {
  // Filter state lives in the URL fragment: #class=NAME&conf=0.5
  var sel = document.getElementById('f-class'), conf = document.getElementById('f-conf');
  if (!sel) return;
  var out = document.getElementById('f-conf-value'), shown = document.getElementById('shown');
  function state() {
    var q = new URLSearchParams(location.hash.slice(1));
    return { cls: q.get('class') || '', conf: parseFloat(q.get('conf')) || 0 };
  }
  function apply() {
    var s = state(), n = 0;
    sel.value = s.cls; conf.value = s.conf; out.textContent = s.conf.toFixed(2);
    document.querySelectorAll('.card').forEach(function (card) {
      var any = false;
      card.querySelectorAll('.pred').forEach(function (p) {
        var ok = (!s.cls || p.dataset.class === s.cls) && parseFloat(p.dataset.conf) >= s.conf;
        p.style.display = ok ? '' : 'none';
        any = any || ok;
      });
      card.style.display = any ? '' : 'none';
      if (any) n++;
    });
    shown.textContent = n;
    // Record where each shown image is on the page (read by `cargo xtask report-check`).
    document.querySelectorAll('.card .stage').forEach(function (st) {
      var r = st.getBoundingClientRect();
      st.dataset.pageX = Math.round(r.left + window.scrollX);
      st.dataset.pageY = Math.round(r.top + window.scrollY);
    });
  }
  function save() {
    var q = new URLSearchParams();
    if (sel.value) q.set('class', sel.value);
    if (parseFloat(conf.value) > 0) q.set('conf', conf.value);
    history.replaceState(null, '', '#' + q.toString());
    apply();
  }
  sel.addEventListener('change', save);
  conf.addEventListener('input', save);
  window.addEventListener('hashchange', apply);
  apply();
})();
