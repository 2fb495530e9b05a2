-- Argo CD health check for the kinds of ec2-reconciler (ec2.reconciler.dev): EbsVolume,
-- AmiImage and EncryptedVolumeMigration. argocd-cm takes it once per kind, as the value of
-- resource.customizations.health.ec2.reconciler.dev_<Kind> (see README.md, argocd-cm.yaml).
-- It reads the conditions the controller writes for every kind, the same ones kstatus (Flux)
-- reads.
--   Degraded    Stalled=True: nothing goes on until the spec, or something in AWS, changes
--   Progressing being deleted; the latest spec not yet seen by the controller;
--               Reconciling=True; Ready=False for any other reason
--   Suspended   observe-only (managementPolicy: ObserveOnly) and AWS differs from the spec:
--               the controller shows the changes in status.plan and applies none
--   Healthy     Ready=True
local hs = {}

local function said(c)
  local reason = c.reason or ""
  if c.message ~= nil and c.message ~= "" then
    return reason .. ": " .. c.message
  end
  return reason
end

if obj.metadata.deletionTimestamp ~= nil then
  hs.status = "Progressing"
  hs.message = "Being deleted: the controller cleans up in AWS first"
  return hs
end

local status = obj.status
if status == nil or status.conditions == nil or status.observedGeneration == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the controller to report"
  return hs
end
if status.observedGeneration ~= obj.metadata.generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the controller to act on the latest spec"
  return hs
end

local conditions = {}
for _, c in ipairs(status.conditions) do
  if c.type ~= nil then
    conditions[c.type] = c
  end
end
local function holds(type)
  local c = conditions[type]
  return c ~= nil and c.status == "True"
end

if holds("Stalled") then
  hs.status = "Degraded"
  hs.message = said(conditions["Stalled"])
  return hs
end
if holds("Reconciling") then
  hs.status = "Progressing"
  hs.message = said(conditions["Reconciling"])
  return hs
end
local ready = conditions["Ready"]
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = said(ready)
  return hs
end
local progressing = conditions["Progressing"]
if progressing ~= nil and progressing.reason == "ObserveOnly" then
  hs.status = "Suspended"
  hs.message = said(ready or progressing)
  return hs
end
hs.status = "Progressing"
if ready ~= nil then
  hs.message = said(ready)
else
  hs.message = "Waiting for the controller to report readiness"
end
return hs
