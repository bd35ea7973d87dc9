--- Spec helpers: OpenSSL's own command line as the independent check of
-- certificates and requests (Debian's openssl package).
local helper = require("spec.support.helper")

local M = {}

local function q(word)
  return "'" .. word:gsub("'", "'\\''") .. "'"
end

--- Runs `openssl ARGS` (a list); returns its exit status (true on 0) and
-- its stdout and stderr together.
function M.run(args)
  local words = {}
  for i, a in ipairs(args) do words[i] = q(a) end
  local p = assert(io.popen("openssl " .. table.concat(words, " ") .. " 2>&1"))
  local out = p:read("a")
  local ok = p:close()
  return ok == true, out
end

--- `openssl verify` of the PEM `cert` against the PEM `root`, with the
-- PEM `untrusted` intermediate if given, files in folder `dir`; returns
-- true, output.
function M.verify(dir, cert, root, untrusted)
  helper.write(dir .. "/v-root.pem", root)
  helper.write(dir .. "/v-cert.pem", cert)
  local args = { "verify", "-CAfile", dir .. "/v-root.pem" }
  if untrusted then
    helper.write(dir .. "/v-chain.pem", untrusted)
    args[#args + 1] = "-untrusted"
    args[#args + 1] = dir .. "/v-chain.pem"
  end
  args[#args + 1] = dir .. "/v-cert.pem"
  return M.run(args)
end

--- `openssl x509 -noout OPTIONS...` on the PEM `cert`; returns its output.
function M.x509(dir, cert, options)
  helper.write(dir .. "/x-cert.pem", cert)
  local args = { "x509", "-in", dir .. "/x-cert.pem", "-noout" }
  for _, o in ipairs(options) do args[#args + 1] = o end
  local ok, out = M.run(args)
  assert(ok, out)
  return out
end

return M
