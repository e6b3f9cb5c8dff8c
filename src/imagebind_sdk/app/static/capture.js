// Microphone recording (MediaRecorder) and webcam snapshots (getUserMedia) as query terms.
// Plain JavaScript, no libraries, only this server's own API; the page's scripts share
// globals and run in order (api.js, capture.js, selection.js, app.js). See docs/app.md.
"use strict";

let recorder = null;

async function toggleMic() {
  clearError();
  const button = $("mic");
  if (recorder) { recorder.stop(); return; }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  } catch (err) {
    return showError("The microphone is not available: " + err.message);
  }
  const chunks = [];
  recorder = new MediaRecorder(stream);
  recorder.ondataavailable = (event) => chunks.push(event.data);
  recorder.onstop = async () => {
    stream.getTracks().forEach((track) => track.stop());
    recorder = null;
    button.textContent = "Record sound";
    button.setAttribute("aria-pressed", "false");
    const blob = new Blob(chunks, { type: chunks[0] ? chunks[0].type : "audio/webm" });
    await addFile(new File([blob], "microphone.webm", { type: blob.type }), "audio");
  };
  recorder.start();
  button.textContent = "Stop recording";
  button.setAttribute("aria-pressed", "true");
  setTimeout(() => { if (recorder) recorder.stop(); }, 10000);  // at most 10 s
}

let camera = null;

async function toggleWebcam() {
  clearError();
  if (camera) return stopWebcam();
  try {
    camera = await navigator.mediaDevices.getUserMedia({ video: true });
  } catch (err) {
    return showError("The webcam is not available: " + err.message);
  }
  const video = $("camera");
  video.srcObject = camera;
  video.hidden = false;
  $("snap").hidden = false;
  $("webcam").setAttribute("aria-pressed", "true");
  await video.play();
}

function stopWebcam() {
  if (camera) camera.getTracks().forEach((track) => track.stop());
  camera = null;
  $("camera").hidden = true;
  $("snap").hidden = true;
  $("webcam").setAttribute("aria-pressed", "false");
}

function snap() {
  const video = $("camera");
  const canvas = document.createElement("canvas");
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  canvas.getContext("2d").drawImage(video, 0, 0);
  canvas.toBlob((blob) => {
    stopWebcam();
    if (blob) addFile(new File([blob], "webcam.jpg", { type: "image/jpeg" }), "vision");
  }, "image/jpeg", 0.92);
}
