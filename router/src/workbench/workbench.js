// The workbench's results as one types: after a pause in typing, the three files are
// posted to the preview (`teil=ergebnis`) and the results pane is replaced by the
// server's rendering of it; a short summary is announced in the status line. Without
// this script the button "Vorschau aktualisieren" gives the same results.
'use strict';

(function () {
  const form = document.querySelector('form.workbench');
  if (!form) return;
  const results = document.getElementById('ergebnisse');
  const status = document.getElementById('ansage');
  const url = form.dataset.preview;
  const PAUSE_MS = 400;
  let timer = null;
  let latest = 0;

  async function refresh() {
    const asked = ++latest;
    const body = new URLSearchParams(new FormData(form));
    body.set('teil', 'ergebnis');
    results.setAttribute('aria-busy', 'true');
    try {
      const answer = await fetch(url, {
        method: 'POST',
        body,
        credentials: 'same-origin',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      });
      if (asked !== latest) return; // a newer edit is on its way
      if (!answer.ok) {
        status.textContent = 'Die Vorschau konnte nicht aktualisiert werden (' + answer.status + '). Bitte laden Sie die Seite neu.';
        return;
      }
      results.innerHTML = await answer.text();
      // Only the verdict's first line: the list of reasons is read in the pane.
      const summary = document.querySelector('#ergebnis-kurz h3, #ergebnis-kurz p');
      status.textContent = 'Ergebnis aktualisiert: ' + (summary ? summary.textContent.replace(/\s+/g, ' ').trim() : '');
    } catch (e) {
      if (asked === latest) status.textContent = 'Die Vorschau konnte nicht aktualisiert werden: keine Verbindung zum Hub.';
    } finally {
      if (asked === latest) results.setAttribute('aria-busy', 'false');
    }
  }

  form.addEventListener('input', function () {
    clearTimeout(timer);
    timer = setTimeout(refresh, PAUSE_MS);
  });
})();
