// PicoFlow's web UI works without JavaScript; this file only adds two
// conveniences: the time-travel slider jumps when it is released, and the
// log of a running attempt follows what it writes.
(function () {
  'use strict';
  var seq = document.getElementById('seq');
  if (seq) {
    var out = document.getElementById('seqout');
    seq.addEventListener('input', function () { if (out) { out.textContent = seq.value; } });
    seq.addEventListener('change', function () { seq.form.submit(); });
  }
  var log = document.getElementById('log');
  if (log && log.dataset.follow) {
    var url = log.dataset.follow;
    var offset = Number(log.dataset.offset || 0);
    var note = document.getElementById('follow');
    var poll = function () {
      fetch(url + '&offset=' + offset, { credentials: 'same-origin', cache: 'no-store' }).then(function (r) {
        var status = r.headers.get('X-Attempt-Status');
        var next = Number(r.headers.get('X-Log-Offset') || offset);
        return r.text().then(function (text) {
          if (text) {
            var atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
            log.appendChild(document.createTextNode(text));
            if (atEnd) { log.scrollTop = log.scrollHeight; }
          }
          offset = next;
          if (status === 'running') {
            setTimeout(poll, 1000);
          } else {
            var badge = document.querySelector('h1 .badge');
            if (badge && status) {
              badge.textContent = status;
              badge.className = 'badge st-' + status.replace(/[^a-z_]/g, '');
            }
            if (note) { note.textContent = 'The attempt ended: ' + status + '.'; }
            log.dataset.ended = status;
          }
        });
      }).catch(function () { setTimeout(poll, 3000); });
    };
    setTimeout(poll, 1000);
  }
}());
