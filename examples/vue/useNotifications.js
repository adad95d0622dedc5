/*
 * useNotifications: a Vue 3 composable over the notifications client
 * module (notifications.mjs), for single-page apps on another origin than
 * the Django server. Plain JavaScript, no build step needed.
 *
 * It imports "vue" and "notifications" as bare specifiers: map them with a
 * bundler alias (Vite: resolve.alias) or an import map (see index.html):
 *
 *     "vue":           your copy of vue.esm-browser.prod.js (or the npm package)
 *     "notifications": https://api.example.com/sse/client.mjs
 *
 * In a component's setup():
 *
 *     const { state, failure, lastEvent, on } = useNotifications({
 *       baseUrl: "https://api.example.com/sse/",
 *       types: ["task_completed"],
 *       withCredentials: true,
 *     });
 *     on("task_completed", ({ data }) => reports.value.push(data));
 *
 * - state: "connecting", "live", "reconnecting", "failed" or "closed"
 * - failure: {status, reason} while state is "failed", else null
 * - lastEvent: the last event received ({type, data, id}), or null
 * - on(type, callback), onReset(callback): as the client's; every callback
 *   ends with the component
 * - client: the client itself (close(), lastEventId, role)
 *
 * The connection closes when the component is unmounted. Tabs of one
 * browser share one connection, whatever the number of components.
 */
import { connect } from "notifications";
import { onUnmounted, ref, shallowRef } from "vue";

export function useNotifications(options) {
  const state = ref("connecting");
  const failure = shallowRef(null);
  const lastEvent = shallowRef(null);
  const client = connect({
    ...options,
    onState(value, detail) {
      state.value = value;
      failure.value = value === "failed" ? detail : null;
      options.onState?.(value, detail);
    },
  });
  client.on("*", (event) => {
    lastEvent.value = event;
  });
  onUnmounted(() => client.close());
  return { state, failure, lastEvent, on: client.on, onReset: client.onReset, client };
}
