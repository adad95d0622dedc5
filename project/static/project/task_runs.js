// Task runs on the page, kept live from the page's one notifications client
// ({% task_runs_live %} puts both on the page), text only:
// - updates every element rendered by {% live_cell %} (data-task-id,
//   data-field), with the same texts as TaskRun.progress_text() and friends,
//   and the progress bar inside the progress cell;
// - adds a row to <tbody data-task-runs> for a run not yet on the page;
// - toasts the user's own runs when they finish, on every page that has the
//   tag: the task's summary sentence (or the error), styled by outcome
//   (data-kind "success" or "failure"), linking to the run's page. Once per
//   run, keyed by the run: on a page that watches every run, the user's own
//   runs arrive twice (on their type's topic and on the user's private
//   topic), and the copies may reach two pages when the first arrives as
//   the page is being replaced (its toast is carried to the next page).
(() => {
  "use strict";

  const config = JSON.parse(document.getElementById("task-runs-config").textContent);
  const percent = (run) => Math.round(run.fraction * 100);
  const texts = {
    status: (run) => run.status,
    progress: (run) =>
      run.fraction === undefined ? undefined : `${percent(run)}%` + (run.message ? ` · ${run.message}` : ""),
    outcome: (run) =>
      run.status === "succeeded"
        ? (run.summary ?? JSON.stringify(run.result))
        : run.status === "failed"
          ? `${run.error.class.split(".").pop()}: ${run.error.message}`
          : undefined,
    duration: (run) => (run.duration == null ? undefined : `${run.duration.toFixed(1)} s`),
  };
  const mine = (run) => run.enqueued_by != null && String(run.enqueued_by) === String(config.userId);
  const starter = (run) => (run.enqueued_by == null ? "" : mine(run) ? config.username : `user #${run.enqueued_by}`);
  const cellsOf = (run) => document.querySelectorAll(`[data-task-id="${CSS.escape(run.task_id)}"][data-field]`);
  const runUrl = (run) => config.runUrl.replace("TASK_ID", encodeURIComponent(run.task_id));

  // The same markup as {% live_cell run "progress" %}.
  function progressCell(cell, run) {
    const bar = document.createElement("progress");
    bar.max = 100;
    bar.value = 0;
    bar.setAttribute("aria-label", `Progress of ${run.task_name}`);
    const text = document.createElement("span");
    text.className = "task-progress-text";
    cell.className = "task-progress";
    cell.append(bar, " ", text);
  }

  function addRow(run) {
    const body = document.querySelector("tbody[data-task-runs]");
    if (!body) return;
    const row = body.insertRow(0);
    for (const field of ["task_name", "status", "progress", "outcome", "duration", "started_by"]) {
      const cell = row.insertCell();
      if (field === "task_name") {
        const link = document.createElement("a");
        link.href = runUrl(run);
        link.textContent = run.task_name;
        cell.append(link);
      } else if (field in texts) {
        const live = document.createElement("span");
        live.dataset.taskId = run.task_id;
        live.dataset.field = field;
        if (field === "progress") progressCell(live, run);
        cell.append(live);
      } else {
        cell.textContent = starter(run);
      }
    }
  }

  function show(run) {
    if (!cellsOf(run).length) addRow(run);
    for (const cell of cellsOf(run)) {
      const text = texts[cell.dataset.field](run);
      if (text === undefined) continue;
      const bar = cell.querySelector("progress");
      if (bar) {
        bar.value = percent(run);
        cell.querySelector(".task-progress-text").textContent = text;
      } else {
        cell.textContent = text;
      }
    }
  }

  for (const type of config.types) notifications.on(type, (event) => show(event.data));

  const formatOtherToast = notifications.formatToast;
  notifications.formatToast = (event) => {
    if (!config.types.includes(event.type)) return formatOtherToast(event);
    const run = event.data;
    if (event.type !== config.completed || !mine(run)) return null;
    const succeeded = run.status === "succeeded";
    return {
      title: `${run.task_name} ${succeeded ? "finished" : "failed"}`,
      text: run.summary ?? texts.outcome(run),
      kind: succeeded ? "success" : "failure",
      href: runUrl(run),
      key: `${config.completed}:${run.task_id}`,
    };
  };
})();
