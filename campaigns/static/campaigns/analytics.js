/*
 * The campaign page's delivery analytics (templates/admin/campaigns/campaign/analytics.html).
 *
 * Draws a Chart.js funnel for the campaign and for each send, shows every fire time in the
 * viewer's own zone, and while anything can still change polls the progress view (through
 * setter/poll.js) and updates numbers, progress bars and charts in place. The server says
 * how soon to ask again (poll_after_ms) and null once nothing more can happen. Each send's
 * "Progress" field follows too, and so do the campaign's status and action buttons.
 */
(function () {
  "use strict";

  const section = document.getElementById("campaign-analytics");
  const initial = document.getElementById("campaign-analytics-data");
  if (!section || !initial) return;

  const FUNNEL = ["queued", "sent", "delivered", "read"];
  const OUTCOMES = ["failed", "skipped", "unknown"];
  const LABELS = ["Queued", "Sent", "Delivered", "Read", "Failed", "Skipped", "Unknown"];
  const COLORS = ["#9aa5b1", "#417690", "#2e8b57", "#1b5e20", "#ba2121", "#c49a00", "#7d5ba6"];
  const charts = new Map(); // box element -> Chart

  // Marks a canvas once Chart.js has drawn it, so a test (or a person) knows it is there.
  const readyFlag = {
    id: "setterReadyFlag",
    afterRender(chart) {
      chart.canvas.dataset.chartReady = "1";
    },
  };

  function bars(funnel) {
    return [...FUNNEL.map((s) => funnel.reached[s]), ...OUTCOMES.map((s) => funnel.counts[s])];
  }

  function percent(fraction) {
    return Math.round(fraction * 100) + "%";
  }

  function drawChart(box, funnel) {
    const canvas = box.querySelector("canvas.funnel-chart");
    if (!canvas || typeof Chart === "undefined") return;
    charts.set(box, new Chart(canvas, {
      type: "bar",
      data: {
        labels: LABELS,
        datasets: [{label: "Recipients", data: bars(funnel), backgroundColor: COLORS}],
      },
      options: {
        animation: false,
        maintainAspectRatio: false,
        plugins: {legend: {display: false}},
        scales: {y: {beginAtZero: true, ticks: {precision: 0}}},
      },
      plugins: [readyFlag],
    }));
  }

  function setField(box, name, text) {
    for (const el of box.querySelectorAll('[data-field="' + name + '"]')) el.textContent = text;
  }

  function errorRow(table, error) {
    const query = new URLSearchParams(table.dataset.filter);
    query.set("status__exact", "failed");
    query.set("error_code", error.code);
    const link = document.createElement("a");
    link.href = section.dataset.recipientsUrl + "?" + query;
    link.textContent = error.code || "(none)";
    const row = document.createElement("tr");
    row.dataset.errorCode = error.code;
    for (const content of [link, error.title, String(error.count)]) {
      const cell = document.createElement("td");
      cell.append(content);
      row.append(cell);
    }
    return row;
  }

  function show(box, funnel) {
    for (const el of box.querySelectorAll("[data-count]")) {
      el.textContent = funnel.counts[el.dataset.count];
    }
    for (const el of box.querySelectorAll("[data-reached]")) {
      el.textContent = funnel.reached[el.dataset.reached];
    }
    const bar = box.querySelector("progress");
    if (bar) bar.value = funnel.progress;
    for (const label of box.querySelectorAll(".send-progress-label, .campaign-progress-label")) {
      label.textContent = percent(funnel.progress);
    }
    for (const name of ["status_display", "done", "total", "opted_out", "ineligible"]) {
      if (name in funnel) setField(box, name, funnel[name]);
    }
    setField(box, "read_rate", funnel.read_rate === null ? "—" : percent(funnel.read_rate));
    const limited = funnel.limited_reporting;
    setField(box, "limited_reporting", limited);
    setField(box, "limited_reporting_noun", limited === 1 ? "recipient is" : "recipients are");
    const caveat = box.querySelector(".limited-reporting-caveat");
    if (caveat) caveat.hidden = !limited;
    const errors = box.querySelector("table.error-groups");
    if (errors) {
      errors.tBodies[0].replaceChildren(...funnel.errors.map((e) => errorRow(errors, e)));
      errors.hidden = !funnel.errors.length;
    }
    const chart = charts.get(box);
    if (chart) {
      chart.data.datasets[0].data = bars(funnel);
      chart.update("none");
    }
  }

  // Each box with the part of the progress view's answer it shows.
  function boxes(state) {
    const pairs = [[section.querySelector(".campaign-summary"), state.campaign]];
    for (const send of state.sends) {
      pairs.push([section.querySelector('.send-analytics[data-send-id="' + send.id + '"]'), send]);
    }
    return pairs.filter(([box]) => box);
  }

  function showViewerTimes() {
    const format = new Intl.DateTimeFormat(undefined, {
      year: "numeric",
      month: "short",
      day: "numeric",
      hour: "2-digit",
      minute: "2-digit",
      timeZoneName: "short",
    });
    const zone = format.resolvedOptions().timeZone;
    for (const time of section.querySelectorAll("time.next-fire")) {
      const viewer = time.parentElement.querySelector(".next-fire-viewer");
      if (!viewer) continue;
      viewer.textContent = "— your time (" + zone + "): " + format.format(new Date(time.dateTime));
      viewer.dataset.timeZone = zone;
    }
  }

  // The summary names the next send to fire; once it fires, the one after it (or none).
  function showNextSend(sendId) {
    const holder = section.querySelector(".campaign-next");
    const id = sendId === null ? "" : String(sendId);
    if (!holder || holder.dataset.sendId === id) return;
    holder.dataset.sendId = id;
    const box = id && section.querySelector('.send-analytics[data-send-id="' + id + '"]');
    if (!box) {
      holder.textContent = "No send is waiting to fire.";
      return;
    }
    const viewer = document.createElement("span");
    viewer.className = "next-fire-viewer";
    const time = box.querySelector("time.next-fire").cloneNode(true);
    holder.replaceChildren("Next send, " + box.dataset.sendName + ": ", time, " ", viewer);
    showViewerTimes();
  }

  // Each send's "Status" and "Progress" fields in the sends below, by the send's id.
  function showDelivery(send) {
    const idInput = document.querySelector(
      '.inline-related input[type="hidden"][name$="-id"][value="' + send.id + '"]');
    const inline = idInput && idInput.closest(".inline-related");
    if (!inline) return;
    const status = inline.querySelector(".fieldBox.field-status .readonly");
    if (status) status.textContent = send.status_display;
    const progress = inline.querySelector(".field-delivery .readonly");
    if (progress && send.delivery !== undefined) progress.textContent = send.delivery;
  }

  // The status shown above the analytics (the lock notice, the Status field) and the action
  // buttons. Buttons are removed as the status stops allowing them; a page that would need a
  // button or a form it never rendered (a draft scheduled elsewhere, a resumable pause) loads
  // again instead.
  function showCampaignStatus(campaign) {
    if (campaign.actions === undefined) return false;
    const rendered = new Set();
    for (const item of document.querySelectorAll("[data-transition]")) {
      rendered.add(item.dataset.transition);
      if (!campaign.actions.includes(item.dataset.transition)) item.remove();
    }
    const missing = campaign.actions.some((action) => !rendered.has(action));
    if ((initialStatus === "draft" && campaign.status !== "draft") || missing) {
      window.location.reload();
      return true;
    }
    const text = campaign.status_display.toLowerCase();
    for (const el of document.querySelectorAll("[data-campaign-status]")) el.textContent = text;
    for (const row of document.querySelectorAll(".form-row.field-status")) {
      if (row.closest(".inline-related")) continue; // a send's, shown by showDelivery
      row.querySelector(".readonly").textContent = campaign.status_display;
    }
    const hint = document.querySelector("[data-campaign-actions-hint]");
    if (hint) hint.hidden = !campaign.actions.length;
    return false;
  }

  function update(state) {
    if (showCampaignStatus(state.campaign)) return null;
    for (const [box, funnel] of boxes(state)) show(box, funnel);
    for (const send of state.sends) showDelivery(send);
    showNextSend(state.next_send_id);
    section.dataset.updatedAt = new Date().toISOString();
    return state.poll_after_ms;
  }

  const state = JSON.parse(initial.textContent);
  const initialStatus = state.campaign.status;
  for (const [box, funnel] of boxes(state)) drawChart(box, funnel);
  showViewerTimes();
  if (state.poll_after_ms !== null) {
    window.setterPoll(section.dataset.progressUrl, update, {
      firstAfterMs: state.poll_after_ms,
      retryMs: 2000,
    });
  }
})();
