/* Lapor Binjai service worker (docs/portal.md, "Web app"): keeps the app shell (home, the report form,
   the stylesheet, the script, the icons) so that the form opens without a connection. Pages are
   network-first (always fresh online); static files are served from the cache and refreshed behind.
   Nothing personal is cached: no status page, no "Laporan saya", nothing sent (POST is never touched). */
var CACHE = 'bcc-shell-1';
var PAGES = ['/', '/lapor'];
var SHELL = PAGES.concat(['/static/portal.css', '/static/app.js', '/static/icon-192.png', '/manifest.webmanifest']);

self.addEventListener('install', function (e) {
  e.waitUntil(caches.open(CACHE).then(function (c) { return c.addAll(SHELL); }).then(function () { return self.skipWaiting(); }));
});
self.addEventListener('activate', function (e) {
  e.waitUntil(caches.keys().then(function (keys) {
    return Promise.all(keys.filter(function (k) { return k !== CACHE; }).map(function (k) { return caches.delete(k); }));
  }).then(function () { return self.clients.claim(); }));
});
self.addEventListener('fetch', function (e) {
  var req = e.request, url = new URL(req.url);
  if (req.method !== 'GET' || url.origin !== self.location.origin) return;
  if (req.mode === 'navigate') {
    if (PAGES.indexOf(url.pathname) < 0) return;
    e.respondWith(fetch(req).then(function (r) {
      if (r.ok) { var copy = r.clone(); caches.open(CACHE).then(function (c) { c.put(req, copy); }); }
      return r;
    }, function () {
      return caches.match(req).then(function (hit) { return hit || caches.match(url.pathname, { ignoreSearch: true }); });
    }));
  } else if (SHELL.indexOf(url.pathname) >= 0) {
    e.respondWith(caches.open(CACHE).then(function (c) {
      return c.match(req).then(function (hit) {
        var net = fetch(req).then(function (r) { if (r.ok) c.put(req, r.clone()); return r; });
        if (!hit) return net;
        net.catch(function () {});
        return hit;
      });
    }));
  }
});
