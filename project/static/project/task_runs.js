// Task runs on the page, kept live from the page's one notifications client
// ({% task_runs_live %} puts both on the page), text only:
// - updates every element rendered by {% live_cell %} (data-task-id,
//   data-field), with the same texts as TaskRun.progress_text() and friends;
// - adds a row to <tbody data-task-runs> for a run not yet on the page;
// - toasts the user's own runs when they finish, in the client's toasts,
//   once per run: on a page that watches every run, the user's own runs
//   arrive twice (on their type's topic and on the user's private topic).
(() => {
  "use strict";

  const config = JSON.parse(document.getElementById("task-runs-config").textContent);
  const texts = {
    status: (run) => run.status,
    progress: (run) =>
      run.fraction === undefined
        ? undefined
        : `${Math.round(run.fraction * 100)}%` + (run.message ? ` · ${run.message}` : ""),
    outcome: (run) =>
      run.status === "succeeded"
        ? JSON.stringify(run.result)
        : run.status === "failed"
          ? `${run.error.class.split(".").pop()}: ${run.error.message}`
          : undefined,
    duration: (run) => (run.duration == null ? undefined : `${run.duration.toFixed(1)} s`),
  };
  const mine = (run) => run.enqueued_by != null && String(run.enqueued_by) === String(config.userId);
  const starter = (run) => (run.enqueued_by == null ? "" : mine(run) ? config.username : `user #${run.enqueued_by}`);
  const cellsOf = (run) => document.querySelectorAll(`[data-task-id="${CSS.escape(run.task_id)}"][data-field]`);

  function addRow(run) {
    const body = document.querySelector("tbody[data-task-runs]");
    if (!body) return;
    const row = body.insertRow(0);
    for (const field of ["task_name", "status", "progress", "outcome", "duration", "started_by"]) {
      const cell = row.insertCell();
      if (field in texts) {
        cell.dataset.taskId = run.task_id;
        cell.dataset.field = field;
      } else {
        cell.textContent = field === "task_name" ? run.task_name : starter(run);
      }
    }
  }

  function show(run) {
    if (!cellsOf(run).length) addRow(run);
    for (const cell of cellsOf(run)) {
      const text = texts[cell.dataset.field](run);
      if (text !== undefined) cell.textContent = text;
    }
  }

  for (const type of config.types) notifications.on(type, (event) => show(event.data));

  const toasted = new Set();
  const formatOtherToast = notifications.formatToast;
  notifications.formatToast = (event) => {
    if (!config.types.includes(event.type)) return formatOtherToast(event);
    const run = event.data;
    if (event.type !== config.completed || !mine(run) || toasted.has(run.task_id)) return null;
    toasted.add(run.task_id);
    return `${run.task_name} ${run.status}: ${texts.outcome(run)}`;
  };
})();
