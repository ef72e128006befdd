// The page: send a dropped or chosen image to POST /predict (the file itself as the body) and show the answer.
"use strict";

const $ = (id) => document.getElementById(id);
const viewer = new PointCloudViewer($("cloud"));

function decode(b64, Type) {
  const bytes = Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0));
  return new Type(bytes.buffer);
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = false;
  $("status").textContent = "";
}

async function predict(file) {
  $("error").hidden = true;
  $("status").textContent = `predicting ${file.name}…`;
  $("input").src = URL.createObjectURL(file);
  let answer, body;
  try {
    answer = await fetch(`/predict?name=${encodeURIComponent(file.name)}`, { method: "POST", body: file });
    body = await answer.json();
  } catch (e) {
    showError(`the server did not answer (${e})`);
    return;
  }
  if (!answer.ok) { showError(body.error || `error ${answer.status}`); return; }
  const unit = body.output === "metric_depth" ? " m" : "";
  $("depth").src = body.depth_color;
  $("range").textContent = body.depth_min === null ? "" :
    `(${body.depth_min.toFixed(2)}–${body.depth_max.toFixed(2)}${unit}${body.domain ? ", " + body.domain : ""})`;
  $("confidence").hidden = !body.confidence_color;
  if (body.confidence_color) $("confidence").src = body.confidence_color;
  $("conf-note").textContent = body.confidence_color ? `(mean ${body.confidence_mean.toFixed(2)}, bright = confident)`
                                                     : "(this model has none)";
  if (body.points) viewer.setPoints(decode(body.points.xyz, Float32Array), decode(body.points.rgb, Uint8Array));
  else viewer.setPoints(new Float32Array(0), new Uint8Array(0));
  const stem = file.name.replace(/\.[^.]*$/, "") || "depth";
  for (const [id, key, name] of [["dl-png", "depth.png", `${stem}_depth.png`], ["dl-npy", "depth.npy", `${stem}.npy`],
                                 ["dl-ply", "depth.ply", `${stem}.ply`],
                                 ["dl-conf", "confidence.npy", `${stem}_confidence.npy`]]) {
    const link = $(id), url = body.downloads[key];
    link.hidden = !url;
    if (url) { link.href = url; link.download = name; }
  }
  $("results").hidden = false;
  $("downloads").hidden = false;
  $("status").textContent = `${file.name}: ${body.width}x${body.height}`;
}

$("file").addEventListener("change", (e) => { if (e.target.files.length) predict(e.target.files[0]); });
const drop = $("drop");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  drop.classList.remove("over");
  if (e.dataTransfer.files.length) predict(e.dataTransfer.files[0]);
});

fetch("/health").then((r) => r.json()).then((h) => {
  $("model").textContent = `${h.model}: ${h.output.replace("_", " ")} (${h.units})` +
    (h.confidence ? ", with confidence" : "");
}).catch(() => { $("model").textContent = "model info unavailable"; });
