/*
 * sigforge: Swagger UI initialiser (first-party code, not vendored).
 *
 * Loaded as an external script so the API docs page works under a
 * Content-Security-Policy without 'unsafe-inline' / 'unsafe-eval'.
 * All settings come from data-* attributes on the container element,
 * which the server-side render plugin fills in:
 *
 *   <div id="swagger-ui"
 *        data-openapi-url="/schema/openapi.json"      (required)
 *        data-oauth2-redirect-url="..."               (optional)
 *        data-init-oauth='{"clientId": "..."}'        (optional, JSON)
 *        data-csrf-cookie="csrftoken"                 (optional)
 *        data-csrf-header="x-csrftoken"></div>        (optional)
 *
 * Network hygiene: validatorUrl is null (no validator.swagger.io badge),
 * only the apis preset / BaseLayout is used (no Swagger top bar, no
 * standalone preset), and query-string config (?url=, ?configUrl=) is off,
 * so the page only ever talks to its own origin.
 */
(function () {
  "use strict";

  var container = document.getElementById("swagger-ui");
  if (!container) {
    return;
  }
  if (typeof window.SwaggerUIBundle !== "function") {
    container.textContent = "Swagger UI failed to load (swagger-ui-bundle.js missing).";
    return;
  }

  var data = container.dataset;

  /* A way back to the console (the Swagger top bar is deliberately off). */
  if (!document.querySelector(".sf-topbar")) {
    var bar = document.createElement("nav");
    bar.className = "sf-topbar";
    bar.setAttribute("aria-label", "Service");
    var back = document.createElement("a");
    back.href = "/";
    back.textContent = "\u2190 sigforge console";
    bar.appendChild(back);
    container.parentNode.insertBefore(bar, container);
  }

  function readCookie(name) {
    var prefix = name + "=";
    var parts = document.cookie ? document.cookie.split("; ") : [];
    for (var i = 0; i < parts.length; i += 1) {
      if (parts[i].indexOf(prefix) === 0) {
        return decodeURIComponent(parts[i].slice(prefix.length));
      }
    }
    return undefined;
  }

  var config = {
    url: data.openapiUrl || "/schema/openapi.json",
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    presets: [window.SwaggerUIBundle.presets.apis],
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    validatorUrl: null,
    queryConfigEnabled: false
  };

  if (data.oauth2RedirectUrl) {
    config.oauth2RedirectUrl = data.oauth2RedirectUrl;
  }

  if (data.csrfCookie && data.csrfHeader) {
    config.requestInterceptor = function (request) {
      var token = readCookie(data.csrfCookie);
      if (token !== undefined) {
        request.headers[data.csrfHeader] = token;
      }
      return request;
    };
  }

  var ui = window.SwaggerUIBundle(config);

  if (data.initOauth) {
    try {
      ui.initOAuth(JSON.parse(data.initOauth));
    } catch (err) {
      /* malformed data-init-oauth: leave OAuth uninitialised */
    }
  }

  window.ui = ui;
})();
