// The stream map (/map): pan and zoom over the world outline (or tiles, when a tile URL is
// set in Settings → General), markers that keep their size, live markers from the page's
// server-sent events. No library: the map is an SVG in degrees.
(function () {
  "use strict";
  var box = document.getElementById("world-map");
  if (!box) return;
  var svg = box.querySelector("svg");
  var tilesEl = box.querySelector(".map-tiles");
  var tileUrl = box.dataset.tiles || "";
  var tiled = tileUrl.length > 0;
  var maxPlays = Math.max(1, Number(box.dataset.max) || 1);
  var SVGNS = "http://www.w3.org/2000/svg";
  // Tiles are Web Mercator: y in the same "degrees" as x, north up, ±180 at ±85.05°.
  function project(lat, lon) {
    if (!tiled) return [lon, -lat];
    var phi = Math.max(-85.05, Math.min(85.05, lat)) * Math.PI / 180;
    return [lon, -Math.log(Math.tan(Math.PI / 4 + phi / 2)) * 180 / Math.PI];
  }
  var limitY = tiled ? 180 : 90;
  var view = { cx: 0, cy: 0, w: 360 };
  if (tiled) box.classList.add("tiled");

  function clamp() {
    view.w = Math.max(360 / 256, Math.min(360, view.w));
    var half = view.w / 4; // the view is twice as wide as high
    view.cy = Math.max(-limitY + half, Math.min(limitY - half, view.cy));
    view.cx = Math.max(-360, Math.min(360, view.cx));
  }
  function unitsPerPixel() { return view.w / Math.max(1, svg.clientWidth); }

  function placeMarkers() {
    var k = unitsPerPixel();
    svg.querySelectorAll("circle.place").forEach(function (c) {
      var p = project(Number(c.dataset.lat), Number(c.dataset.lon));
      c.setAttribute("cx", p[0]);
      c.setAttribute("cy", p[1]);
      c.setAttribute("r", (4 + 10 * Math.sqrt(Number(c.dataset.plays) / maxPlays)) * k);
    });
  }

  function drawTiles() {
    if (!tiled) return;
    var px = svg.clientWidth, k = px / view.w;
    var z = Math.max(0, Math.min(18, Math.ceil(Math.log2(px * 360 / view.w / 256))));
    var n = Math.pow(2, z), span = 360 / n, size = span * k;
    var left = view.cx - view.w / 2, top = view.cy - view.w / 4;
    var html = [];
    for (var ty = Math.floor((top + 180) / span); ty * span - 180 < top + view.w / 2; ty++) {
      if (ty < 0 || ty >= n) continue;
      for (var tx = Math.floor((left + 180) / span); tx * span - 180 < left + view.w; tx++) {
        var x = ((tx % n) + n) % n;
        var src = tileUrl.replace("{z}", z).replace("{x}", x).replace("{y}", ty);
        var img = document.createElement("img");
        img.src = src;
        img.alt = "";
        img.style.left = ((tx * span - 180 - left) * k) + "px";
        img.style.top = ((ty * span - 180 - top) * k) + "px";
        img.style.width = img.style.height = size + "px";
        html.push(img);
      }
    }
    tilesEl.replaceChildren.apply(tilesEl, html);
  }

  function render() {
    clamp();
    var h = view.w / 2;
    svg.setAttribute("viewBox", [view.cx - view.w / 2, view.cy - h / 2, view.w, h].join(" "));
    placeMarkers();
    drawTiles();
  }

  function zoom(factor, fx, fy) {
    // Keep the point under (fx, fy) pixels where it is.
    var k = unitsPerPixel(), rect = svg.getBoundingClientRect();
    var ux = view.cx - view.w / 2 + (fx - rect.left) * k;
    var uy = view.cy - view.w / 4 + (fy - rect.top) * k;
    view.w /= factor;
    clamp();
    var k2 = unitsPerPixel();
    view.cx = ux - (fx - rect.left) * k2 + view.w / 2;
    view.cy = uy - (fy - rect.top) * k2 + view.w / 4;
    render();
  }

  box.querySelectorAll("[data-zoom]").forEach(function (b) {
    b.addEventListener("click", function () {
      var r = svg.getBoundingClientRect(), mx = r.left + r.width / 2, my = r.top + r.height / 2;
      if (b.dataset.zoom === "in") zoom(1.6, mx, my);
      else if (b.dataset.zoom === "out") zoom(1 / 1.6, mx, my);
      else { view = { cx: 0, cy: 0, w: 360 }; render(); }
    });
  });
  svg.addEventListener("wheel", function (e) {
    e.preventDefault();
    zoom(e.deltaY < 0 ? 1.25 : 0.8, e.clientX, e.clientY);
  }, { passive: false });

  // Drag to pan; two fingers to pinch.
  var pointers = new Map(), last = null, pinch = 0;
  svg.addEventListener("pointerdown", function (e) {
    svg.setPointerCapture(e.pointerId);
    pointers.set(e.pointerId, [e.clientX, e.clientY]);
    last = [e.clientX, e.clientY];
    pinch = 0;
  });
  svg.addEventListener("pointermove", function (e) {
    if (!pointers.has(e.pointerId)) return;
    pointers.set(e.pointerId, [e.clientX, e.clientY]);
    if (pointers.size === 2) {
      var pts = Array.from(pointers.values());
      var d = Math.hypot(pts[0][0] - pts[1][0], pts[0][1] - pts[1][1]);
      if (pinch > 0) zoom(d / pinch, (pts[0][0] + pts[1][0]) / 2, (pts[0][1] + pts[1][1]) / 2);
      pinch = d;
      return;
    }
    var k = unitsPerPixel();
    view.cx -= (e.clientX - last[0]) * k;
    view.cy -= (e.clientY - last[1]) * k;
    last = [e.clientX, e.clientY];
    render();
  });
  function up(e) { pointers.delete(e.pointerId); pinch = 0; }
  svg.addEventListener("pointerup", up);
  svg.addEventListener("pointercancel", up);
  window.addEventListener("resize", render);

  // Live markers: the page's one SSE stream.
  function name(p) {
    if (p.city && p.country) return p.city + ", " + p.country;
    return p.country || p.city || (p.lat.toFixed(2) + ", " + p.lon.toFixed(2));
  }
  if (window.EventSource && box.dataset.events) {
    var source = new EventSource(box.dataset.events);
    source.addEventListener("places", function (ev) {
      var places = JSON.parse(ev.data);
      var layer = svg.querySelector(".map-live");
      var list = document.getElementById("live-places");
      var marks = [], items = [];
      places.forEach(function (p) {
        var c = document.createElementNS(SVGNS, "circle");
        c.setAttribute("class", "place live");
        c.dataset.lat = p.lat;
        c.dataset.lon = p.lon;
        c.dataset.plays = p.plays;
        var t = document.createElementNS(SVGNS, "title");
        t.textContent = "Live: " + name(p) + ": " + p.plays + " streams, " + p.users + " users";
        c.appendChild(t);
        marks.push(c);
        var li = document.createElement("li");
        li.textContent = name(p) + " ";
        var s = document.createElement("span");
        s.className = "muted";
        s.textContent = p.plays + " streams, " + p.users + " users";
        li.appendChild(s);
        items.push(li);
      });
      layer.replaceChildren.apply(layer, marks);
      list.replaceChildren.apply(list, items);
      var none = document.getElementById("no-live");
      if (none) none.hidden = places.length > 0;
      document.getElementById("map-live-count").textContent = places.length;
      placeMarkers();
    });
    window.addEventListener("pagehide", function () { source.close(); });
  }
  render();
})();
