#  One CZMQ actor per file; each also runs as its own selftest.
foreach (name http gateway recorder assignment placement worker layerfetch builder layerserver database agent events)
    list (APPEND CLOWDY_SOURCES actors/${name}.c)
    list (APPEND CLOWDY_SELFTESTS ${name})
endforeach ()
