// Progressive enhancement only: every page works without this script.
// 1. Conditional fields are hidden while their condition does not hold.
// 2. The error summary takes the focus, so screen readers announce it.
// 3. The confirmation page gets a print button.
// 4. A file is uploaded as soon as it is chosen.
// 5. A place with latitude and longitude gets "Meinen Standort verwenden".
(function () {
  'use strict';
  function valueOf(form, name) {
    var inputs = form.querySelectorAll('[name="' + name + '"]');
    for (var i = 0; i < inputs.length; i++) {
      var input = inputs[i];
      if (input.type === 'radio') { if (input.checked) return input.value; }
      else if (input.type === 'checkbox') { return input.checked ? 'true' : 'false'; }
      else return input.value;
    }
    return '';
  }
  function update(form) {
    var conditional = form.querySelectorAll('[data-when-field]');
    for (var i = 0; i < conditional.length; i++) {
      var element = conditional[i];
      var field = element.getAttribute('data-when-field');
      if (!form.querySelector('[name="' + field + '"]')) continue; // on another step
      var allowed = element.getAttribute('data-when-values').split('|');
      element.hidden = allowed.indexOf(valueOf(form, field)) < 0;
    }
  }
  document.addEventListener('DOMContentLoaded', function () {
    var forms = document.querySelectorAll('form');
    for (var i = 0; i < forms.length; i++) {
      (function (form) {
        if (!form.querySelector('[data-when-field]')) return;
        form.addEventListener('change', function () { update(form); });
        update(form);
        var hints = form.querySelectorAll('.portal-condition');
        for (var j = 0; j < hints.length; j++) hints[j].hidden = true;
      })(forms[i]);
    }
    var files = document.querySelectorAll('input[type="file"][data-upload]');
    for (var k = 0; k < files.length; k++) {
      files[k].addEventListener('change', function (event) {
        var button = document.getElementById(event.target.getAttribute('data-upload'));
        if (event.target.files.length > 0 && button) button.click();
      });
    }
    var lat = document.querySelector('input[name$=".lat"]');
    var lon = lat && document.querySelector('input[name="' + lat.name.replace(/lat$/, 'lon') + '"]');
    if (lat && lon && navigator.geolocation) {
      var here = document.createElement('button');
      here.type = 'button';
      here.className = 'kern-btn kern-btn--secondary portal-locate';
      here.innerHTML = '<span class="kern-label">Meinen Standort verwenden</span>';
      var said = document.createElement('p');
      said.className = 'kern-hint';
      said.setAttribute('role', 'status');
      here.addEventListener('click', function () {
        said.textContent = 'Ihr Standort wird ermittelt …';
        navigator.geolocation.getCurrentPosition(function (position) {
          lat.value = position.coords.latitude.toFixed(5);
          lon.value = position.coords.longitude.toFixed(5);
          said.textContent = 'Ihr Standort ist eingetragen. Bitte prüfen Sie ihn.';
        }, function () {
          said.textContent = 'Ihr Standort konnte nicht ermittelt werden. Bitte tragen Sie den Ort selbst ein.';
        }, { enableHighAccuracy: true, timeout: 15000 });
      });
      var field = lat.closest('.portal-field') || lat.parentNode;
      field.parentNode.insertBefore(here, field);
      field.parentNode.insertBefore(said, field);
    }
    var summary = document.getElementById('fehlerliste');
    if (summary) summary.focus();
    var print = document.querySelector('.portal-print');
    if (print) {
      print.hidden = false;
      print.addEventListener('click', function () { window.print(); });
    }
  });
})();
