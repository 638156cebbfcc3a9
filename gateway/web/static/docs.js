// Starts Swagger UI on the gateway's own OpenAPI document (a file, not inline: the CSP forbids
// inline scripts). No validator badge: it would call a host on the internet.
(function () {
  var node = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: node.getAttribute("data-spec-url"),
    dom_id: "#swagger-ui",
    validatorUrl: null,
    deepLinking: true,
  });
})();
