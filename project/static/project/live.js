// The demo page's log: every event and every reset this page receives.
(() => {
  "use strict";

  const log = document.getElementById("live-log");

  function add(text, attributes) {
    const item = document.createElement("li");
    item.textContent = text;
    Object.assign(item.dataset, attributes);
    log.append(item);
  }

  notifications.on("*", (event) => {
    add(`${event.type} ${event.id}: ${JSON.stringify(event.data)}`, { eventId: event.id });
  });
  notifications.onReset((reset) => {
    add(`Stream reset (${reset.reason}): events may have been missed; reload to see the current state.`, {
      reset: reset.reason,
    });
  });
})();
