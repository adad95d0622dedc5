/*
 * The template tag's client: a bootstrap over the ES module
 * notifications.mjs, which holds the one implementation.
 *
 *     {% load notifications %}
 *     {% notifications_client types="announcement,task_completed" %}
 *
 * The tag writes the configuration as a JSON script element with id
 * "notifications-config" and loads this file as a module script (deferred:
 * it runs after the document is parsed, in order with deferred scripts).
 * It defines window.notifications, the API connect() returns (see
 * notifications.mjs), and dispatches "notifications:event",
 * "notifications:reset" and "notifications:state" on document.
 */
import { connect } from "./notifications.mjs";

const CONFIG_ELEMENT_ID = "notifications-config";

const element = document.getElementById(CONFIG_ELEMENT_ID);
if (!element) throw new Error(`notifications.js needs a JSON script element with id "${CONFIG_ELEMENT_ID}".`);
window.notifications = connect({ ...JSON.parse(element.textContent), documentEvents: true });
