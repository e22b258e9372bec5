// A QR code as SVG elements (no markup strings), from the vendored qrcode-generator, which is
// fetched the first time an address shows.
import { loadScript } from "../lib/script.js?v=a0d4822859f1";

const SVG = "http://www.w3.org/2000/svg";
const QUIET = 4; // modules of white border every reader expects around the code

export async function renderQr(box, text, url) {
  const qrcode = await loadScript(url, "qrcode");
  const code = qrcode(0, "M"); // version chosen by length; medium error correction
  code.addData(text);
  code.make();
  const count = code.getModuleCount();
  const size = count + QUIET * 2;
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${size} ${size}`);
  svg.setAttribute("shape-rendering", "crispEdges");
  const back = document.createElementNS(SVG, "rect");
  back.setAttribute("width", size);
  back.setAttribute("height", size);
  back.setAttribute("class", "wlt-qr-back");
  const path = [];
  for (let row = 0; row < count; row++) {
    for (let col = 0; col < count; col++) {
      if (code.isDark(row, col)) path.push(`M${col + QUIET} ${row + QUIET}h1v1h-1z`);
    }
  }
  const dark = document.createElementNS(SVG, "path");
  dark.setAttribute("d", path.join(""));
  dark.setAttribute("class", "wlt-qr-dark");
  svg.append(back, dark);
  box.replaceChildren(svg);
  box.dataset.text = text;
}
