#!/usr/bin/env node
/*
 * Build the federated extension into `jupyterlab.outputDir` with @jupyter/builder.
 *
 * @jupyter/builder ships no bin: its build script is `lib/build-labextension.js` and it requires
 * `--core-package-file`, the JupyterLab core `package.json` that decides which packages are shared
 * singletons. @jupyterlab/core-meta ships exactly that file, so the build needs no Python and no
 * `jupyter` CLI. `jupyter labextension build` (jupyter_builder) runs the same command.
 *
 * Extra arguments (`--development`, `--source-map`, `--watch`) are passed through.
 */
'use strict';

const { spawnSync } = require('child_process');
const path = require('path');

const builderScript = require.resolve('@jupyter/builder/lib/build-labextension.js');
const corePackageFile = require.resolve('@jupyterlab/core-meta/core.package.json');
const extensionPath = path.resolve(__dirname, '..');

const result = spawnSync(
  process.execPath,
  [builderScript, '--core-package-file', corePackageFile, ...process.argv.slice(2), extensionPath],
  { stdio: 'inherit' }
);
if (result.error) {
  throw result.error;
}
process.exit(result.status === null ? 1 : result.status);
