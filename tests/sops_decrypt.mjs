// An independent reader of SOPS files, for tests/test_sops.py.
// Usage: node sops_decrypt.mjs FILE KEYFILE   (run from a folder whose node_modules holds
// sops-age). Prints JSON {"data": <plaintext from sops-age>, "mac": "ok" | "<why not>"}.
// sops-age decrypts the values but does not check the MAC, so this script checks it itself
// with sops-age's own dependencies (age-encryption, @noble/ciphers, @noble/hashes, yaml),
// following sops's rules: SHA-512 over each non-null leaf's plaintext in document order.
import { readFileSync } from "node:fs";
import { decryptSops } from "sops-age";
import { Decrypter, armor } from "age-encryption";
import { gcm } from "@noble/ciphers/aes";
import { sha512 } from "@noble/hashes/sha2";
import { parse } from "yaml";

const [file, keyFile] = process.argv.slice(2);
const text = readFileSync(file, "utf8");
const secretKey = readFileSync(keyFile, "utf8")
  .split("\n")
  .find((line) => line.startsWith("AGE-SECRET-KEY-"));

const data = await decryptSops(text, { secretKey, fileType: "yaml" });

const b64 = (s) => Uint8Array.from(Buffer.from(s, "base64"));
const ENC = /^ENC\[AES256_GCM,data:(.+),iv:(.+),tag:(.+),type:(.+)\]/;

function open(value, key, additionalData) {
  const m = ENC.exec(value);
  if (!m) throw new Error(`not encrypted: ${value}`);
  const sealed = new Uint8Array([...b64(m[1]), ...b64(m[3])]);
  return gcm(key, b64(m[2]), new TextEncoder().encode(additionalData)).decrypt(sealed);
}

function macCheck(doc, dataKey) {
  const meta = doc.sops;
  const encrypts = (path) => {
    if (meta.encrypted_regex) {
      return path.some((k) => new RegExp(meta.encrypted_regex).test(k));
    }
    const suffix = meta.unencrypted_suffix || "_unencrypted";
    return !path.some((k) => k.endsWith(suffix));
  };
  const chunks = [];
  const walk = (node, path) => {
    if (node === null || node === undefined) return;
    if (Array.isArray(node)) return node.forEach((item) => walk(item, path));
    if (typeof node === "object") {
      for (const [k, v] of Object.entries(node)) walk(v, [...path, k]);
      return;
    }
    if (encrypts(path) && node !== "") {
      chunks.push(open(node, dataKey, path.join(":") + ":"));
    } else if (typeof node === "boolean") {
      chunks.push(new TextEncoder().encode(node ? "True" : "False"));
    } else {
      chunks.push(new TextEncoder().encode(String(node)));
    }
  };
  const { sops: _, ...tree } = doc;
  walk(tree, []);
  const all = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.length;
  }
  const computed = Buffer.from(sha512(all)).toString("hex").toUpperCase();
  const stored = new TextDecoder().decode(open(meta.mac, dataKey, meta.lastmodified));
  return computed === stored ? "ok" : `mismatch: stored ${stored}, computed ${computed}`;
}

const doc = parse(text);
const decrypter = new Decrypter();
decrypter.addIdentity(secretKey);
let mac;
try {
  const dataKey = await decrypter.decrypt(armor.decode(doc.sops.age[0].enc));
  mac = macCheck(doc, dataKey);
} catch (err) {
  mac = `error: ${err.message}`;
}
process.stdout.write(JSON.stringify({ data, mac }) + "\n");
