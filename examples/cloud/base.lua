-- examples/cloud/base.lua: a cloud device identity (the AWS IoT / ESP
-- RainMaker shape): namespace rmaker_creds with the node's id, its
-- certificate and its private key (both PEM text, as blobs). Three modes:
--   * "ca" (params.mode, the default): the key is made here and its
--     certificate signed by the factory CA in the files params.ca_cert and
--     params.ca_key (CN = the node id); the manifest exports it;
--   * "csr": the key is made here and only a request leaves (manifest
--     column csr, PEM); the image holds the key, no certificate;
--   * signed (when the batch has a values table): each row names the
--     unit's image from the csr run (`image`, and `keys` when it was
--     encrypted) and the certificate the CA sent back (`certificate`, a
--     PEM or DER file); the key is taken from that image and must be the
--     certificate's.
-- Paths in a values row are taken from the folder the command runs in.
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
package.path = here .. "/../../lua/?.lua;" .. here .. "/../../lua/?/init.lua;" .. package.path
package.cpath = here .. "/../../build/?.so;" .. package.cpath

local recipe = require("nvsgen.recipe")
local identity = require("nvsgen.identity")
local nvsgen = require("nvsgen")
local files = require("nvsgen.files")

local NS = "rmaker_creds"

local function node_id(u)
  return ("%s%06d"):format(u.params.prefix, u.serial)
end

local function write_identity(u, id, key_pem, cert_pem)
  u:namespace(NS)
  u:string("node_id", id)
  if cert_pem then u:blob("client_cert", cert_pem) end
  u:blob("client_key", key_pem)
end

-- The unit's key from its image of the csr run.
local function key_from_image(u)
  local image, keys = u:value("image"), u.values.keys
  local read, err = nvsgen.read(image, keys ~= "" and keys or nil)
  if not read then error(err, 0) end
  local ns = read.namespaces[NS]
  local pem = ns and ns.client_key
  if type(pem) ~= "string" then
    error(("%s: no %s/client_key in the image"):format(image, NS), 0)
  end
  local key
  key, err = identity.parse_key(pem)
  if not key then error(("%s: client_key: %s"):format(image, err), 0) end
  return key, pem
end

return recipe.define{
  description = "Cloud device identity: node id, certificate and key in rmaker_creds.",
  size = 0x6000,
  name = "node-%d.bin",
  exports = { "node_id", "certificate" },
  params = {
    mode = "ca", prefix = "acme-node-", days = 3650,
    -- from the recipe's folder (a recipe extending this one: from its own)
    ca_cert = "factory-ca.pem", ca_key = "factory-ca-key.pem",
    organization = "ACME Devices",
  },
  unit = function(u)
    local p = u.params
    local id = u:export("node_id", node_id(u))
    if u.values then
      local key, key_pem = key_from_image(u)
      local path = u:value("certificate")
      local data, err = files.read(path)
      if not data then error(err, 0) end
      local cert
      cert, err = identity.parse_cert(data)
      if not cert then error(path .. ": " .. err, 0) end
      if not key:matches(cert) then
        error(("%s: certificate does not match the unit's key"):format(path), 0)
      end
      write_identity(u, id, key_pem, u:export("certificate", cert:pem()))
      return
    end
    local key = assert(identity.generate_key("p256"))
    local subject = { O = p.organization, CN = id }
    if p.mode == "csr" then
      local req = assert(identity.csr{ key = key, subject = subject })
      write_identity(u, id, key:private_pem())
      u:export("csr", req:pem())
    elseif p.mode == "ca" then
      local ca = u:ca(p.ca_cert, p.ca_key)
      local cert = assert(ca:issue{
        key = key, subject = subject, days = p.days,
        extensions = { ext_key_usage = "clientAuth" },
      })
      write_identity(u, id, key:private_pem(), u:export("certificate", cert:pem()))
    else
      error(("params.mode must be \"ca\" or \"csr\", not %q"):format(tostring(p.mode)), 0)
    end
  end,
}
