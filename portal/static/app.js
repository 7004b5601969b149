/* Lapor Binjai web app (docs/portal.md, "Web app"). Every page works without this script; where it
   runs it adds: the service worker (offline app shell), offline drafts (IndexedDB, photos resized on
   the phone, sent with an idempotency key when the connection returns) and "use my location". */
(function () {
  'use strict';
  if (!('indexedDB' in window) || !window.fetch || !window.Promise) return;
  /* after the page has loaded and settled: nothing here may slow the first paint on a cheap phone */
  var later = window.requestIdleCallback || function (f) { setTimeout(f, 200); };
  window.addEventListener('load', function () {
    later(function () {
      if ('serviceWorker' in navigator) navigator.serviceWorker.register('/sw.js').catch(function () {});
      flush();
    });
  });
  var T = {};
  try { T = JSON.parse(document.getElementById('app-text').textContent); } catch (e) { /* no texts */ }
  var lang = document.documentElement.lang === 'en' ? 'en' : 'id';
  var $ = function (s) { return document.querySelector(s); };

  /* IndexedDB: one store of drafts, keyed by their idempotency key */
  function store(mode, fn) {
    return new Promise(function (ok, ko) {
      var open = indexedDB.open('bcc-drafts', 1);
      open.onupgradeneeded = function () { open.result.createObjectStore('drafts', { keyPath: 'key' }); };
      open.onerror = function () { ko(open.error); };
      open.onsuccess = function () {
        var tx = open.result.transaction('drafts', mode), req = fn(tx.objectStore('drafts'));
        tx.oncomplete = function () { open.result.close(); ok(req.result); };
        tx.onerror = function () { open.result.close(); ko(tx.error); };
      };
    });
  }
  /* a flag beside the drafts, so that pages without drafts never open the database */
  function waiting(on) {
    try {
      if (on === true) localStorage.setItem('bcc-drafts', '1');
      else if (on === false) localStorage.removeItem('bcc-drafts');
      return localStorage.getItem('bcc-drafts') === '1';
    } catch (e) { return true; }
  }
  function newKey() {
    var b = crypto.getRandomValues(new Uint8Array(16));
    return Array.prototype.map.call(b, function (x) { return (x + 256).toString(16).slice(1); }).join('');
  }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text) e.textContent = text;
    return e;
  }
  function notice(cls, parts) {
    var box = el('div', cls), out = $('#drafts');
    box.setAttribute('role', cls === 'errors' ? 'alert' : 'status');
    parts.forEach(function (p) { box.appendChild(p); });
    out.appendChild(box);
    box.scrollIntoView && box.scrollIntoView();
    return box;
  }
  function sentNotice(j) {
    Array.prototype.forEach.call(document.querySelectorAll('#drafts .saved'), function (b) { b.remove(); });
    var link = el('a', 'keylink', location.origin + j.key_url);
    link.href = j.key_url;
    notice('notice', [el('p', '', T.pwa_sent), el('p', 'code', j.code), el('p', '', T.pwa_key), link]);
  }
  function refusedNotice(d, errors) {
    var list = el('ul');
    Object.keys(errors || {}).forEach(function (k) { list.appendChild(el('li', '', errors[k])); });
    notice('errors', [el('p', '', T.pwa_refused + ' ' + d.title), list]);
  }

  /* one draft to the server: {ok, status, json} or null when there is no connection */
  function post(d, token) {
    var body = new FormData();
    d.fields.forEach(function (f) { body.append(f[0], f[0] === 'csrf_token' && token ? token : f[1]); });
    d.photos.forEach(function (b, i) { body.append('photos', b, 'foto-' + (i + 1) + '.jpg'); });
    body.append('draft_key', d.key);
    return fetch('/lapor/draf?lang=' + d.lang, { method: 'POST', body: body, credentials: 'same-origin' })
      .then(function (r) {
        return r.json().catch(function () { return null; }).then(function (j) { return { status: r.status, json: j }; });
      }, function () { return null; });
  }
  function freshToken() {  /* the cookie's CSRF token, read from a fresh form page */
    return fetch('/lapor', { credentials: 'same-origin', cache: 'no-store' }).then(function (r) { return r.text(); })
      .then(function (html) { var m = /name="csrf_token" value="([^"]+)"/.exec(html); return m && m[1]; }, function () { return null; });
  }
  function send(d) {
    return post(d).then(function (res) {
      if (res && res.status === 403) return freshToken().then(function (t) { return t ? post(d, t) : res; });
      return res;
    }).then(function (res) {
      if (!res) return null;
      var drop = function () { return store('readwrite', function (s) { return s.delete(d.key); }); };
      if (res.status === 200 && res.json) return drop().then(function () { return { sent: res.json }; });
      if (res.status === 400 && res.json) return drop().then(function () { refusedNotice(d, res.json.errors); return { refused: true }; });
      return null;  /* rate limit or server trouble: the draft stays for the next try */
    });
  }
  var flushing = false;
  function flush() {
    if (flushing || !navigator.onLine || !waiting()) return;
    flushing = true;
    store('readonly', function (s) { return s.getAll(); }).then(function (drafts) {
      return drafts.reduce(function (p, d) {
        return p.then(function (go) {
          if (!go) return false;
          return send(d).then(function (res) { if (res && res.sent) sentNotice(res.sent); return res !== null; });
        });
      }, Promise.resolve(true));
    }).then(function () {
      return store('readonly', function (s) { return s.count(); }).then(function (n) { if (!n) waiting(false); });
    }).catch(function () {}).then(function () { flushing = false; });
  }
  window.addEventListener('online', flush);

  /* portal/services/phone.py's mobile_id: the number an SMS can go to (Indonesian mobile), or null */
  function mobile(v) {
    var m = /^(\+62|0062|62|0)(.*)$/.exec(v.trim().replace(/[\s().-]/g, ''));
    return m && /^8[1-9][0-9]{7,10}$/.test(m[2]) ? '+62' + m[2] : null;
  }

  /* photos: the server's limits checked on the phone, then resized (longest side) to JPEG */
  function shrink(file, L) {
    if (!/^image\/(jpeg|png|webp)$/.test(file.type)) return Promise.reject('photo_bad_type');
    if (file.size > L.bytes) return Promise.reject('photo_too_large');
    return createImageBitmap(file).catch(function () { throw 'photo_bad_type'; }).then(function (bmp) {
      if (bmp.width * bmp.height > L.pixels) throw 'photo_too_many_pixels';
      var k = Math.min(1, L.side / Math.max(bmp.width, bmp.height)), c = document.createElement('canvas');
      c.width = Math.round(bmp.width * k);
      c.height = Math.round(bmp.height * k);
      c.getContext('2d').drawImage(bmp, 0, 0, c.width, c.height);
      return new Promise(function (ok) { c.toBlob(ok, 'image/jpeg', 0.85); });
    });
  }

  var form = $('form.report');
  if (form) {
    var ds = form.dataset, L = { photos: +ds.maxPhotos, bytes: +ds.maxBytes, pixels: +ds.maxPixels, side: +ds.maxSide };
    var busy = false;
    form.addEventListener('submit', function (ev) {
      if (ev.submitter && ev.submitter.hasAttribute('formaction')) return;  /* "check similar": as usual */
      ev.preventDefault();
      if (busy) return;
      busy = true;
      var files = Array.prototype.slice.call(form.querySelector('#f-photos').files);
      /* SMS chosen: the number checked here as the server will, so a draft is never refused later for it */
      var sms = form.querySelector('input[name=notify_channel]:checked');
      var checks = sms && sms.value === 'sms' && !mobile(form.contact_phone.value) ? Promise.reject('err_phone_sms')
        : files.length > L.photos ? Promise.reject('photo_too_many') : Promise.all(files.map(function (f) { return shrink(f, L); }));
      checks.then(function (blobs) {
        var fields = [];
        new FormData(form).forEach(function (v, k) { if (typeof v === 'string') fields.push([k, v]); });
        var d = { key: newKey(), fields: fields, photos: blobs, lang: lang, title: form.querySelector('#f-title').value, at: Date.now() };
        waiting(true);
        return store('readwrite', function (s) { return s.put(d); }).then(function () {
          return navigator.onLine ? send(d) : null;
        }).then(function (res) {
          if (res && res.sent) { location.href = res.sent.status_url; return; }
          if (res) return;  /* refused: the problems are shown, the form stays as typed */
          form.reset();
          notice('notice saved', [el('p', '', T.pwa_saved)]);
        });
      }, function (key) {
        notice('errors', [el('p', '', T.errors_intro), el('p', '', T[key] || String(key))]);
      }).catch(function () { form.submit(); }).then(function () { busy = false; });
    });

    var btn = $('#locate'), msg = $('#locate-msg');
    if (btn && 'geolocation' in navigator) {
      btn.hidden = false;
      btn.addEventListener('click', function () {
        navigator.geolocation.getCurrentPosition(function (pos) {
          var lat = pos.coords.latitude.toFixed(6), lon = pos.coords.longitude.toFixed(6);
          fetch('/lapor/lokasi?lang=' + lang + '&lat=' + lat + '&lon=' + lon).then(function (r) {
            return r.json().then(function (j) {
              if (!r.ok) { msg.textContent = j.error; form.lat.value = form.lon.value = ''; return; }
              form.lat.value = lat;
              form.lon.value = lon;
              form.kelurahan.value = j.kelurahan;
              msg.textContent = T.loc_found + ' ' + j.name + ' (' + j.kecamatan + ')';
            });
          }, function () {
            form.lat.value = lat;
            form.lon.value = lon;
            msg.textContent = T.loc_offline;
          });
        }, function () { msg.textContent = T.loc_denied; }, { enableHighAccuracy: true, timeout: 20000, maximumAge: 0 });
      });
    }
  }
})();
