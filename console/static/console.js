// The console's own script: live updates from server-sent events, and the ticket chart.
// No inline scripts anywhere (the content security policy forbids them); htmx does the rest.
(function () {
  "use strict";

  function listen() {
    if (!document.body.dataset.live || !window.EventSource) return;
    var source = new EventSource("/events");
    ["tickets", "patrols"].forEach(function (name) {
      source.addEventListener(name, function () {
        document.body.dispatchEvent(new CustomEvent(name + "-changed"));
      });
    });
  }

  function drawChart(box) {
    if (!window.uPlot) return;
    fetch(box.dataset.chart, { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (answer) {
        var data = answer.data || [[], []];
        if (!data[0].length) {
          box.textContent = "—";
          return;
        }
        var width = Math.max(240, Math.min(box.clientWidth || 480, 720));
        var options = {
          width: width,
          height: 180,
          series: [{}, { label: box.dataset.label, stroke: "#b3261e", width: 2 }],
          axes: [{}, {}],
          legend: { show: true },
        };
        box.chart = new uPlot(options, data, box);
        box.dataset.points = String(data[0].length);
      })
      .catch(function () { box.textContent = "—"; });
  }

  document.addEventListener("DOMContentLoaded", function () {
    listen();
    document.querySelectorAll("[data-chart]").forEach(drawChart);
  });
})();
