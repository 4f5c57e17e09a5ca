// speechfleet playground: plain JS, no build step, no third-party code. Every call goes to the
// API this page came from, as any browser client's would; errors show the envelope's message.
"use strict";

const $ = (id) => document.getElementById(id);
const KEY_STORE = "speechfleet.apiKey";
const JOBS_STORE = "speechfleet.recentJobs";

// --- talking to the API ----------------------------------------------------------------------

function authHeaders() {
  const key = localStorage.getItem(KEY_STORE);
  return key ? { Authorization: `Bearer ${key}` } : {};
}

class ApiError extends Error {}

async function failure(response) {
  let message = `${response.status} ${response.statusText}`;
  try {
    const body = await response.json();
    if (body && body.message) message = body.message;
  } catch (_) { /* not the envelope */ }
  return new ApiError(message);
}

async function api(path, { method, json, form, headers = {} } = {}) {
  const sends = json !== undefined || form !== undefined;
  const init = { method: method || (sends ? "POST" : "GET"), headers: { ...authHeaders(), ...headers } };
  if (json !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  } else if (form !== undefined) {
    init.body = form;
  }
  const response = await fetch(path, init);
  if (!response.ok) throw await failure(response);
  return response;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// A job sent with Prefer: respond-async, followed until it ends, then its result: the page can
// show every job's steps and the fleet view can list it.
async function runJob(kind, path, options) {
  const accepted = await (await api(path, { ...options, headers: { Prefer: "respond-async" } })).json();
  remember(accepted.id, kind);
  refreshFleet();
  for (let delay = 150; ; delay = Math.min(delay * 1.5, 1000)) {
    const job = await (await api(`/v1/jobs/${accepted.id}`)).json();
    if (["succeeded", "failed", "cancelled"].includes(job.status)) break;
    await sleep(delay);
  }
  refreshFleet();
  return api(`/v1/jobs/${accepted.id}/result`);
}

function remember(id, kind) {
  const jobs = recentJobs().filter((job) => job.id !== id);
  jobs.unshift({ id, kind, at: Date.now() });
  localStorage.setItem(JOBS_STORE, JSON.stringify(jobs.slice(0, 12)));
}

function recentJobs() {
  try { return JSON.parse(localStorage.getItem(JOBS_STORE) || "[]"); } catch (_) { return []; }
}

// --- helpers -----------------------------------------------------------------------------

function fileAsDataUrl(blob) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);  // the API takes data: URLs as base64 audio
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(blob);
  });
}

function base64Blob(data, type) {
  const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
  return new Blob([bytes], { type });
}

function setAudio(element, blob) {
  if (element.dataset.url) URL.revokeObjectURL(element.dataset.url);
  const url = URL.createObjectURL(blob);
  element.dataset.url = url;
  element.src = url;
  return url;
}

function option(select, value, label) {
  const node = document.createElement("option");
  node.value = value;
  node.textContent = label || value;
  select.appendChild(node);
}

function fillModels(select, cards) {
  const previous = select.value;
  select.replaceChildren();
  for (const card of cards) option(select, card.id, card.object === "toolchain" ? `${card.id} (toolchain)` : card.id);
  if (cards.some((card) => card.id === previous)) select.value = previous;
}

function pickedFile(input) {
  return input.files && input.files[0] ? input.files[0] : null;
}

// a button's work with its section's error line: cleared on start, the message on failure
function action(button, errorLine, work) {
  $(button).addEventListener("click", async () => {
    $(errorLine).textContent = "";
    $(button).disabled = true;
    try {
      await work();
    } catch (error) {
      $(errorLine).textContent = error instanceof ApiError ? error.message : `error: ${error.message}`;
    } finally {
      $(button).disabled = false;
    }
  });
}

function text(tag, content, className) {
  const node = document.createElement(tag);
  node.textContent = content;
  if (className) node.className = className;
  return node;
}

// --- listings ------------------------------------------------------------------------------

const state = { speech: [], voices: [], cloning: [] };

async function loadListings() {
  const [all, speech, stt, vad, embed, vc, convert] = await Promise.all([
    "/v1/models", "/v1/audio/speech/models", "/v1/audio/transcriptions/models", "/v1/audio/vad/models",
    "/v1/embed/models", "/v1/voice/convert/models", "/v1/audio/convert/models",
  ].map(async (path) => (await (await api(path)).json()).data));
  state.speech = speech;
  fillModels($("tts-model"), speech);
  fillModels($("stt-model"), stt);
  fillModels($("vad-model"), vad);
  fillModels($("embed-model"), embed);
  fillModels($("vc-model"), vc.filter((card) => card.object === "toolchain"));
  fillModels($("denoise-model"), convert);
  state.cloning = speech.filter((card) => card.object === "toolchain" && card.steps.some((step) =>
    all.some((model) => model.id === step && model.capabilities.includes("embed"))));
  const present = {
    tts: speech.length, stt: stt.length, vad: vad.length, embed: embed.length,
    voice_convert: $("vc-model").options.length, convert: convert.length, cloning: state.cloning.length, always: 1,
  };
  buildTabs(present);
  await loadVoices();
}

async function loadVoices() {
  const listing = await (await api("/v1/audio/voices")).json();
  state.voices = listing.data;
  const body = $("voice-list");
  body.replaceChildren();
  for (const voice of listing.data) {
    const row = document.createElement("tr");
    row.append(text("td", voice.name), text("td", voice.id, "mono"), text("td", voice.toolchains.join(", ")));
    const cell = document.createElement("td");
    const remove = text("button", "Delete");
    remove.addEventListener("click", async () => {
      $("voice-error").textContent = "";
      try {
        await api(`/v1/audio/voices/${voice.id}`, { method: "DELETE" });
      } catch (error) {
        $("voice-error").textContent = error.message;
      }
      await loadVoices();
    });
    cell.append(remove);
    row.append(cell);
    body.append(row);
  }
  fillVoices();
}

function fillVoices() {
  const select = $("tts-voice");
  const previous = select.value;
  select.replaceChildren();
  const card = state.speech.find((entry) => entry.id === $("tts-model").value);
  const isToolchain = card && card.object === "toolchain";
  $("tts-reference-row").hidden = !isToolchain;
  if (isToolchain) {
    for (const voice of state.voices) option(select, voice.id, `${voice.name} (saved)`);
    if (!state.voices.length) option(select, "", "(upload a reference clip)");
  } else {
    const names = card ? card.languages.flatMap((language) => language.voices.map((voice) => voice.voice)) : [];
    if (!names.length) option(select, "", "default");
    for (const name of [...new Set(names)]) option(select, name);
  }
  if ([...select.options].some((node) => node.value === previous)) select.value = previous;
}

function buildTabs(present) {
  const nav = $("tabs");
  nav.replaceChildren();
  const sections = [...document.querySelectorAll("main > section")];
  const shown = sections.filter((section) => present[section.dataset.capability]);
  for (const section of sections) section.hidden = true;
  const select = (section) => {
    for (const other of sections) other.hidden = other !== section;
    for (const tab of nav.children) tab.classList.toggle("active", tab.dataset.section === section.id);
    location.hash = section.id;
  };
  for (const section of shown) {
    const tab = text("button", section.dataset.title);
    tab.dataset.section = section.id;
    tab.addEventListener("click", () => select(section));
    nav.append(tab);
  }
  const wanted = shown.find((section) => `#${section.id}` === location.hash) || shown[0];
  if (wanted) select(wanted);
}

// --- text to speech --------------------------------------------------------------------------

$("tts-speed").addEventListener("input", () => {
  $("tts-speed-value").textContent = Number($("tts-speed").value).toFixed(2);
});
$("tts-model").addEventListener("change", fillVoices);

action("tts-go", "tts-error", async () => {
  const model = $("tts-model").value;
  const format = $("tts-format").value;
  const card = state.speech.find((entry) => entry.id === model);
  const body = { model, input: $("tts-text").value, response_format: format, speed: Number($("tts-speed").value) };
  const voice = $("tts-voice").value;
  const reference = pickedFile($("tts-reference"));
  let blob;
  if (card && card.object === "toolchain" && reference) {
    // HSE's voice cloning call: the reference clip as base64, the answer base64 audio
    const hse = { model, input: body.input, input_audio: await fileAsDataUrl(reference),
                  generation_options: { speed: body.speed }, output_options: { format } };
    const result = await (await runJob(`speech ${model}`, "/v1/audio/speech", { json: hse })).json();
    blob = base64Blob(result.data, `audio/${format}`);
  } else {
    if (voice) body.voice = card && card.object === "toolchain" ? { id: voice } : voice;
    blob = await (await runJob(`speech ${model}`, "/v1/audio/speech", { json: body })).blob();
  }
  const url = setAudio($("tts-audio"), blob);
  const download = $("tts-download");
  download.href = url;
  download.download = `speech.${format}`;
  download.hidden = false;
  $("tts-audio").play().catch(() => { /* autoplay may be refused: the controls are there */ });
});

// --- speech to text --------------------------------------------------------------------------

let recorded = null;
let recorder = null;

$("stt-file").addEventListener("change", () => {
  recorded = null;
  const file = pickedFile($("stt-file"));
  if (file) setAudio($("stt-audio"), file);
});

$("stt-record").addEventListener("click", async () => {
  $("stt-error").textContent = "";
  if (recorder && recorder.state === "recording") {
    recorder.stop();
    return;
  }
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    const chunks = [];
    recorder = new MediaRecorder(stream);
    recorder.ondataavailable = (event) => chunks.push(event.data);
    recorder.onstop = () => {
      stream.getTracks().forEach((track) => track.stop());
      recorded = new Blob(chunks, { type: recorder.mimeType || "audio/webm" });
      setAudio($("stt-audio"), recorded);
      $("stt-record").textContent = "Record";
    };
    recorder.start();
    $("stt-record").textContent = "Stop";
  } catch (error) {
    $("stt-error").textContent = `microphone: ${error.message}`;
  }
});

function clock(seconds, separator) {
  const ms = Math.max(0, Math.round(seconds * 1000));
  const pad = (value, size) => String(value).padStart(size, "0");
  return `${pad(Math.floor(ms / 3600000), 2)}:${pad(Math.floor(ms / 60000) % 60, 2)}:` +
    `${pad(Math.floor(ms / 1000) % 60, 2)}${separator}${pad(ms % 1000, 3)}`;
}

function subtitles(segments, kind) {
  const separator = kind === "srt" ? "," : ".";
  const cues = segments.map((segment, index) => {
    const timing = `${clock(segment.start, separator)} --> ${clock(segment.end, separator)}`;
    return `${kind === "srt" ? `${index + 1}\n` : ""}${timing}\n${segment.text.trim()}\n`;
  });
  return (kind === "vtt" ? "WEBVTT\n\n" : "") + cues.join("\n");
}

action("stt-go", "stt-error", async () => {
  const audio = recorded || pickedFile($("stt-file"));
  if (!audio) throw new ApiError("choose an audio file or record one first");
  const form = new FormData();
  form.append("file", audio, audio.name || "recording.webm");
  form.append("model", $("stt-model").value);
  form.append("response_format", "verbose_json");
  form.append("timestamp_granularities[]", "segment");
  form.append("timestamp_granularities[]", "word");
  if ($("stt-language").value.trim()) form.append("language", $("stt-language").value.trim());
  const result = await (await runJob(`transcription ${$("stt-model").value}`, "/v1/audio/transcriptions",
                                     { form })).json();
  $("stt-text").textContent = result.text;
  const words = $("stt-words");
  words.replaceChildren();
  for (const word of result.words || []) {
    const span = text("span", `${word.word} `);
    span.dataset.start = word.start;
    span.dataset.end = word.end;
    span.title = `${word.start.toFixed(2)}–${word.end.toFixed(2)} s`;
    span.addEventListener("click", () => { $("stt-audio").currentTime = word.start; $("stt-audio").play(); });
    words.append(span);
  }
  const segments = result.segments || [];
  for (const kind of ["srt", "vtt"]) {
    const link = $(`stt-${kind}`);
    link.href = URL.createObjectURL(new Blob([subtitles(segments, kind)], { type: "text/plain" }));
    link.hidden = false;
  }
  $("stt-subtitles").textContent = subtitles(segments, "srt");
});

$("stt-audio").addEventListener("timeupdate", () => {
  const now = $("stt-audio").currentTime;
  for (const span of $("stt-words").children) {
    span.classList.toggle("now", now >= Number(span.dataset.start) && now < Number(span.dataset.end));
  }
});

// --- voice activity ----------------------------------------------------------------------------

async function decodeSamples(file) {
  const context = new OfflineAudioContext(1, 1, 16000);
  const buffer = await context.decodeAudioData(await file.arrayBuffer());
  return { samples: buffer.getChannelData(0), duration: buffer.duration };
}

function drawWaveform(canvas, samples, duration, regions) {
  const context = canvas.getContext("2d");
  const { width, height } = canvas;
  context.fillStyle = "#10151c";
  context.fillRect(0, 0, width, height);
  context.fillStyle = "rgba(64, 196, 128, 0.35)";
  for (const region of regions) {
    const x = (region.start / duration) * width;
    context.fillRect(x, 0, Math.max(1, ((region.end - region.start) / duration) * width), height);
  }
  context.strokeStyle = "#8fb8ff";
  context.beginPath();
  const step = Math.max(1, Math.floor(samples.length / width));
  for (let x = 0; x < width; x++) {
    let low = 0;
    let high = 0;
    for (let i = x * step; i < Math.min(samples.length, (x + 1) * step); i++) {
      low = Math.min(low, samples[i]);
      high = Math.max(high, samples[i]);
    }
    context.moveTo(x + 0.5, height / 2 - high * height / 2);
    context.lineTo(x + 0.5, height / 2 - low * height / 2);
  }
  context.stroke();
  canvas.dataset.regions = String(regions.length);
}

action("vad-go", "vad-error", async () => {
  const file = pickedFile($("vad-file"));
  if (!file) throw new ApiError("choose an audio file first");
  const body = { model: $("vad-model").value, input_audio: await fileAsDataUrl(file), get_timestamps: true,
                 return_seconds: true, threshold: Number($("vad-threshold").value) };
  const result = await (await runJob(`vad ${body.model}`, "/v1/audio/vad", { json: body })).json();
  const regions = result.timestamps || [];
  const { samples, duration } = await decodeSamples(file);
  drawWaveform($("vad-canvas"), samples, duration, regions);
  $("vad-summary").textContent = regions.length
    ? `${regions.length} speech region(s): ` + regions.map((r) => `${r.start}–${r.end} s`).join(", ")
    : "no speech found";
});

// --- speaker similarity ------------------------------------------------------------------------

async function embedding(model, file) {
  const result = await (await runJob(`embedding ${model}`, "/v1/embed/speaker",
                                     { json: { model, input_audio: await fileAsDataUrl(file) } })).json();
  const bytes = Uint8Array.from(atob(result.data), (c) => c.charCodeAt(0));
  return new Float32Array(bytes.buffer);
}

action("embed-go", "embed-error", async () => {
  const a = pickedFile($("embed-a"));
  const b = pickedFile($("embed-b"));
  if (!a || !b) throw new ApiError("choose two clips");
  const model = $("embed-model").value;
  const [x, y] = await Promise.all([embedding(model, a), embedding(model, b)]);
  if (x.length !== y.length) throw new ApiError("the two embeddings differ in size");
  let dot = 0;
  let nx = 0;
  let ny = 0;
  for (let i = 0; i < x.length; i++) { dot += x[i] * y[i]; nx += x[i] * x[i]; ny += y[i] * y[i]; }
  const cosine = dot / (Math.sqrt(nx) * Math.sqrt(ny));
  $("embed-result").textContent = `cosine similarity ${cosine.toFixed(3)} (${x.length}-d)`;
});

// --- voice conversion, denoising ---------------------------------------------------------------

action("vc-go", "vc-error", async () => {
  const source = pickedFile($("vc-source"));
  const target = pickedFile($("vc-target"));
  if (!source || !target) throw new ApiError("choose a source and a target clip");
  setAudio($("vc-before"), source);
  const body = { model: $("vc-model").value, source_audio: await fileAsDataUrl(source),
                 target_audio: await fileAsDataUrl(target), output_options: { format: "wav" } };
  const result = await (await runJob(`voice conversion ${body.model}`, "/v1/voice/convert", { json: body })).json();
  setAudio($("vc-after"), base64Blob(result.data, "audio/wav"));
});

action("denoise-go", "denoise-error", async () => {
  const file = pickedFile($("denoise-file"));
  if (!file) throw new ApiError("choose an audio file first");
  setAudio($("denoise-before"), file);
  const body = { model: $("denoise-model").value, source_audio: await fileAsDataUrl(file),
                 output_options: { format: "wav" } };
  const result = await (await runJob(`convert ${body.model}`, "/v1/audio/convert", { json: body })).json();
  setAudio($("denoise-after"), base64Blob(result.data, "audio/wav"));
});

// --- voice library -----------------------------------------------------------------------------

action("voice-go", "voice-error", async () => {
  const file = pickedFile($("voice-file"));
  if (!file) throw new ApiError("choose a reference clip");
  const form = new FormData();
  form.append("name", $("voice-name").value);
  form.append("audio_sample", file, file.name);
  if ($("voice-consent").value.trim()) form.append("consent", $("voice-consent").value.trim());
  await api("/v1/audio/voices", { method: "POST", form });
  await loadVoices();
});

// --- fleet ---------------------------------------------------------------------------------------

let fleetBusy = false;

async function refreshFleet() {
  if (fleetBusy) return;
  fleetBusy = true;
  try {
    const view = await (await api("/v1/fleet")).json();
    $("fleet-error").textContent = view.redis ? "" : `Redis unreachable: ${view.reason}`;
    const body = $("fleet-models");
    body.replaceChildren();
    for (const model of view.models) {
      const row = document.createElement("tr");
      row.className = model.live_workers ? "live" : "down";
      row.append(text("td", model.name), text("td", model.model_type), text("td", String(model.queue_depth)),
                 text("td", String(model.live_workers)), text("td", model.workers.join(", "), "mono"));
      body.append(row);
    }
    const live = view.models.filter((model) => model.live_workers).length;
    $("server-status").textContent = `${live}/${view.models.length} models with live workers`;
    await refreshJobs();
  } catch (error) {
    $("fleet-error").textContent = error.message;
  } finally {
    fleetBusy = false;
  }
}

async function refreshJobs() {
  const body = $("fleet-jobs");
  const rows = await Promise.all(recentJobs().map(async (entry) => {
    const row = document.createElement("tr");
    row.append(text("td", new Date(entry.at).toLocaleTimeString()), text("td", entry.kind));
    try {
      const job = await (await api(`/v1/jobs/${entry.id}`)).json();
      row.append(text("td", job.status, `status-${job.status}`));
      const steps = job.steps.map((step) => {
        const wait = step.queue_wait_ms == null ? "–" : `${Math.round(step.queue_wait_ms)} ms`;
        const run = step.inference_ms == null ? "–" : `${Math.round(step.inference_ms)} ms`;
        return `${step.name} [${step.status}] ${wait} / ${run}${step.worker ? ` on ${step.worker}` : ""}`;
      });
      row.append(text("td", steps.join(" → ") || "–", "mono"));
    } catch (error) {
      row.append(text("td", "gone"), text("td", error.message));
    }
    return row;
  }));
  body.replaceChildren(...rows);
}

// --- start ---------------------------------------------------------------------------------------

async function start() {
  const key = $("api-key");
  key.value = localStorage.getItem(KEY_STORE) || "";
  key.addEventListener("change", async () => {
    if (key.value.trim()) localStorage.setItem(KEY_STORE, key.value.trim());
    else localStorage.removeItem(KEY_STORE);
    await boot();
  });
  await boot();
  setInterval(refreshFleet, 2000);
}

async function boot() {
  try {
    await loadListings();
    $("server-status").dataset.loaded = "true";
  } catch (error) {
    $("server-status").textContent = error.message;
    buildTabs({ always: 1 });
  }
  await refreshFleet();
  document.body.dataset.ready = "true";
}

start();
