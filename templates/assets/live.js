// tally dashboard: live updates. The server renders each page's live region
// once a second and pushes it over server-sent events; this swaps it in (and the
// metrics page's chart, sent as `chart` events, into #series-chart).
// Without JavaScript the page still shows complete, current numbers.
"use strict";
(() => {
  const body = document.body;
  const live = document.getElementById("live");
  const conn = document.getElementById("conn");
  const url = body.dataset.stream;
  if (!url || !live || !("EventSource" in window)) {
    return;
  }
  const show = (text, cls) => {
    if (conn) {
      conn.textContent = text;
      conn.className = "conn " + cls;
    }
  };
  const source = new EventSource(url);
  source.addEventListener("open", () => show("live", "on"));
  source.addEventListener("update", (event) => {
    live.innerHTML = event.data;
    body.dataset.updates = String(Number(body.dataset.updates || "0") + 1);
    show("live", "on");
  });
  // The metrics page's chart, re-rendered by the server every few seconds.
  const chart = document.getElementById("series-chart");
  source.addEventListener("chart", (event) => {
    if (chart) {
      chart.innerHTML = event.data;
      chart.dataset.updates = String(Number(chart.dataset.updates || "0") + 1);
    }
  });
  source.addEventListener("error", () => show("reconnecting…", "off"));
  window.addEventListener("pagehide", () => source.close());
})();
