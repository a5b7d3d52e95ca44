/*
 * Polling for admin pages that show live progress (an audience ingest, a firing campaign).
 *
 * setterPoll(url, onState, options) fetches the JSON at `url` with the session's cookies and
 * hands each answer to onState, which returns how many milliseconds to wait before asking
 * again, or null to stop. A failed request (network, non-2xx, not JSON) is retried after
 * options.retryMs; the first request goes out after options.firstAfterMs.
 */
(function () {
  "use strict";

  window.setterPoll = function (url, onState, options) {
    const {firstAfterMs = 0, retryMs = 2000} = options || {};
    async function poll() {
      let next = retryMs;
      try {
        const response = await fetch(url, {
          credentials: "same-origin",
          headers: {Accept: "application/json"},
        });
        if (response.ok) next = onState(await response.json());
      } catch (error) {
        /* The next poll retries. */
      }
      if (next !== null && next !== undefined) setTimeout(poll, next);
    }
    setTimeout(poll, firstAfterMs);
  };
})();
