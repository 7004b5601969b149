// The video wall (/dinding): follows the wall controller's layout preset, replaces each view with the
// HTML the server sends over /dinding/events, reconnects by itself and marks old data as stale.
// Read-only: nothing here sends anything but the event-stream request.
(function () {
  "use strict";
  const wall = document.getElementById("wall");
  const parking = document.getElementById("parking");
  if (!wall) { return; }
  const layouts = JSON.parse(wall.dataset.layouts || "{}");
  const staleAfterMs = Number(wall.dataset.staleAfter || "60") * 1000;
  const panels = {};
  const fresh = {};
  const flagged = {};
  document.querySelectorAll("section.view[data-view]").forEach(function (el) {
    panels[el.dataset.view] = el;
    fresh[el.dataset.view] = Date.now();
    flagged[el.dataset.view] = el.classList.contains("stale");
  });
  // The page's language's texts (portal/locale, rendered into data-text by wall/index.html).
  const TEXT = JSON.parse(wall.dataset.text || "{}");
  const HARI = TEXT.days;  // Sunday first
  const BULAN = TEXT.months;
  function fill(text, n) { return text.replace("{n}", String(n)); }

  function sizeRegions() {
    wall.querySelectorAll(".region").forEach(function (r) {
      r.style.flexGrow = r.dataset.width || "1";
    });
  }

  function applyLayout(name) {
    const regions = layouts[name];
    if (!regions) { return; }
    Object.keys(panels).forEach(function (v) { parking.appendChild(panels[v]); });
    wall.replaceChildren();
    regions.forEach(function (region) {
      const div = document.createElement("div");
      div.className = "region";
      div.dataset.width = String(region.width);
      region.views.forEach(function (v) { if (panels[v]) { div.appendChild(panels[v]); } });
      wall.appendChild(div);
    });
    wall.dataset.layout = name;
    sizeRegions();
  }

  function two(n) { return (n < 10 ? "0" : "") + n; }

  function tick() {
    const now = Date.now();
    const wib = new Date(now + 7 * 3600 * 1000);  // WIB is UTC+7 all year
    document.querySelectorAll("[data-clock=time]").forEach(function (el) {
      el.textContent = two(wib.getUTCHours()) + "." + two(wib.getUTCMinutes()) + "." + two(wib.getUTCSeconds()) + " WIB";
    });
    document.querySelectorAll("[data-clock=date]").forEach(function (el) {
      el.textContent = HARI[wib.getUTCDay()] + ", " + wib.getUTCDate() + " " + BULAN[wib.getUTCMonth()] + " " + wib.getUTCFullYear();
    });
    Object.keys(panels).forEach(function (v) {
      if (v === "clock") { return; }
      const age = now - fresh[v];
      const stale = flagged[v] || age > staleAfterMs;
      panels[v].classList.toggle("stale", stale);
      const mark = panels[v].querySelector(".stalemark");
      if (mark) {
        mark.textContent = !stale ? "" : (age <= staleAfterMs ? TEXT.stale
          : TEXT.stale + " · " + (age < 120000 ? fill(TEXT.seconds, Math.floor(age / 1000)) : fill(TEXT.minutes, Math.floor(age / 60000))));
      }
    });
  }

  function setConn(state) {
    wall.dataset.connection = state;
    document.querySelectorAll("[data-conn]").forEach(function (el) {
      el.textContent = state === "live" ? TEXT.live : TEXT.reconnecting;
    });
  }

  let source = null;
  function connect() {
    source = new EventSource("/dinding/events");
    source.addEventListener("open", function () { setConn("live"); });
    source.addEventListener("layout", function (e) {
      applyLayout(JSON.parse(e.data).layout);
    });
    source.addEventListener("view", function (e) {
      const msg = JSON.parse(e.data);
      const panel = panels[msg.view];
      if (!panel) { return; }
      panel.querySelector(".body").innerHTML = msg.html;  // rendered and escaped by the server
      fresh[msg.view] = Date.now();
      flagged[msg.view] = !!msg.stale;
      tick();
    });
    source.addEventListener("reload", function () {  // an admin changed which view goes where
      source.close();
      location.reload();
    });
    source.addEventListener("revoked", function () {
      source.close();
      location.reload();
    });
    source.addEventListener("error", function () {
      setConn("down");
      // The browser retries by itself unless the server answered with an error (e.g. 502 during a
      // restart): then the stream is closed for good and we open a new one.
      if (source.readyState === EventSource.CLOSED) {
        setTimeout(connect, 3000);
      }
    });
  }

  sizeRegions();
  tick();
  setInterval(tick, 1000);
  connect();
})();
