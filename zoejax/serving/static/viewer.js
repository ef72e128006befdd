// A small point-cloud viewer on a 2D canvas: perspective projection with a z-buffer, drag to rotate, wheel to
// zoom. Points are in the camera frame (x right, y down, z forward, metres), so the first view is the photo's.
"use strict";

class PointCloudViewer {
  constructor(canvas) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.yaw = 0; this.pitch = 0; this.zoom = 1;
    this.count = 0;
    let dragging = null;
    canvas.addEventListener("pointerdown", (e) => { dragging = [e.clientX, e.clientY]; canvas.setPointerCapture(e.pointerId); });
    canvas.addEventListener("pointerup", () => { dragging = null; });
    canvas.addEventListener("pointermove", (e) => {
      if (!dragging) return;
      this.yaw += (e.clientX - dragging[0]) * 0.01;
      this.pitch = Math.max(-1.5, Math.min(1.5, this.pitch - (e.clientY - dragging[1]) * 0.01));
      dragging = [e.clientX, e.clientY];
      this.draw();
    });
    canvas.addEventListener("wheel", (e) => {
      e.preventDefault();
      this.zoom = Math.max(0.2, Math.min(5, this.zoom * Math.exp(e.deltaY * 0.001)));
      this.draw();
    }, { passive: false });
  }

  // xyz: Float32Array (3N), rgb: Uint8Array (3N).
  setPoints(xyz, rgb) {
    this.xyz = xyz; this.rgb = rgb; this.count = xyz.length / 3;
    const c = [0, 0, 0];
    for (let i = 0; i < this.count; i++) for (let k = 0; k < 3; k++) c[k] += xyz[3 * i + k];
    for (let k = 0; k < 3; k++) c[k] /= Math.max(this.count, 1);
    let r = 0;
    for (let i = 0; i < this.count; i++) {
      const dx = xyz[3 * i] - c[0], dy = xyz[3 * i + 1] - c[1], dz = xyz[3 * i + 2] - c[2];
      r = Math.max(r, Math.sqrt(dx * dx + dy * dy + dz * dz));
    }
    this.center = c; this.radius = r || 1;
    this.yaw = 0.45; this.pitch = -0.25; this.zoom = 1;  // a little turned, so that the relief shows
    this.draw();
  }

  draw() {
    const w = this.canvas.width, h = this.canvas.height;
    const image = this.ctx.createImageData(w, h);
    const px = image.data;
    for (let i = 3; i < px.length; i += 4) { px[i] = 255; px[i - 1] = 17; px[i - 2] = 17; px[i - 3] = 17; }
    if (!this.count) { this.ctx.putImageData(image, 0, 0); return; }
    const zbuf = new Float32Array(w * h).fill(Infinity);
    const cy = Math.cos(this.yaw), sy = Math.sin(this.yaw), cp = Math.cos(this.pitch), sp = Math.sin(this.pitch);
    const dist = 2.2 * this.radius * this.zoom, f = 0.9 * Math.min(w, h) * 1.1;
    const [c0, c1, c2] = this.center, xyz = this.xyz, rgb = this.rgb;
    for (let i = 0; i < this.count; i++) {
      const x = xyz[3 * i] - c0, y = xyz[3 * i + 1] - c1, z = xyz[3 * i + 2] - c2;
      const x1 = cy * x + sy * z, z1 = -sy * x + cy * z;   // yaw about the vertical (y) axis
      const y2 = cp * y - sp * z1, z2 = sp * y + cp * z1;  // pitch about the horizontal (x) axis
      const depth = z2 + dist;
      if (depth <= 1e-6) continue;
      const u = Math.round(w / 2 + f * x1 / depth), v = Math.round(h / 2 + f * y2 / depth);
      for (let dv = 0; dv < 2; dv++) for (let du = 0; du < 2; du++) {  // 2x2 splats close the gaps
        const uu = u + du, vv = v + dv;
        if (uu < 0 || vv < 0 || uu >= w || vv >= h) continue;
        const j = vv * w + uu;
        if (depth >= zbuf[j]) continue;
        zbuf[j] = depth;
        px[4 * j] = rgb[3 * i]; px[4 * j + 1] = rgb[3 * i + 1]; px[4 * j + 2] = rgb[3 * i + 2];
      }
    }
    this.ctx.putImageData(image, 0, 0);
  }
}

window.PointCloudViewer = PointCloudViewer;
