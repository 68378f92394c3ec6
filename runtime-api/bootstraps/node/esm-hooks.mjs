// Module customization hooks registered by bootstrap.js (module.register, Node < 22.15) when an
// ES module handler loads and layer folders exist: a bare specifier that the normal ES module
// resolution cannot find is retried as if imported from inside each layer's node_modules, which
// is how ES modules find layer packages on AWS (ES module resolution ignores NODE_PATH).

let parents = [];

export async function initialize(data) {
  parents = data?.parents ?? [];
}

function isBareSpecifier(specifier) {
  return !/^(\.{0,2}\/|[a-zA-Z][a-zA-Z\d+.-]*:)/.test(specifier) && specifier !== '.' && specifier !== '..';
}

export async function resolve(specifier, context, nextResolve) {
  try {
    return await nextResolve(specifier, context);
  } catch (err) {
    if (err?.code !== 'ERR_MODULE_NOT_FOUND' || !isBareSpecifier(specifier)) throw err;
    for (const parentURL of parents) {
      try {
        return await nextResolve(specifier, { ...context, parentURL });
      } catch (e) {
        if (e?.code !== 'ERR_MODULE_NOT_FOUND') throw e;
      }
    }
    throw err;
  }
}
