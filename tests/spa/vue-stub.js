// Stands in for "vue" in tests/spa/vue.html: the ref(), shallowRef() and
// onUnmounted() examples/vue/useNotifications.js needs, without Vue itself
// (no CDN here). unmount() runs the hooks as Vue does on unmounting.
const hooks = [];

export const ref = (value) => ({ value });
export const shallowRef = ref;
export const onUnmounted = (hook) => hooks.push(hook);
export const unmount = () => hooks.splice(0).forEach((hook) => hook());
