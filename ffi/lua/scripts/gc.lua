-- Lua's own collector over agc_* memory: full and incremental collections, generational mode,
-- weak tables, finalizers (__gc), resurrection, and memory going back.
collectgarbage("collect")
local base = collectgarbage("count")
do
    local junk = {}
    for i = 1, 200000 do junk[i] = { i, tostring(i) } end
end
collectgarbage("collect")
assert(collectgarbage("count") < base + 1024, "memory came back")
local weak = setmetatable({}, { __mode = "k" })
for i = 1, 1000 do weak[{}] = i end
collectgarbage("collect")
assert(next(weak) == nil, "weak keys collected")
local finalized = 0
for i = 1, 1000 do setmetatable({}, { __gc = function() finalized = finalized + 1 end }) end
collectgarbage("collect")
assert(finalized == 1000)
local saved
do
    setmetatable({ name = "phoenix" }, { __gc = function(o) saved = o end })
end
collectgarbage("collect")
assert(saved and saved.name == "phoenix", "resurrected by its finalizer")
collectgarbage("generational")
for i = 1, 100000 do local _ = { i } end
collectgarbage("incremental")
for _ = 1, 50 do collectgarbage("step", 10) end
collectgarbage("collect")
