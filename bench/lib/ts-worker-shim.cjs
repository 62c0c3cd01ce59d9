'use strict'
// Entry of a generator thread when the bench runs from source under tsx. Node 20 classifies a
// Worker's main module, and its ESM import(), before tsx's ESM hooks apply in the new thread, so a
// .ts entry fails with ERR_UNKNOWN_FILE_EXTENSION; tsx's require() hook does apply, which is also
// how Piscina loads the server's inference worker. From dist/ the .js entry is loaded directly.
require(process.argv[2])
