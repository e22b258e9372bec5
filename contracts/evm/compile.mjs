// Compiles src/*.sol with the pinned solc-js (no network: OpenZeppelin is read from node_modules)
// and writes one artifact per contract to artifacts/<Name>.json: ABI, creation and runtime bytecode.
//
//   node contracts/evm/compile.mjs          write the artifacts
//   node contracts/evm/compile.mjs --check  exit 1 when the committed artifacts differ from the source
import { existsSync, readFileSync, readdirSync, writeFileSync, mkdirSync, unlinkSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createRequire } from 'node:module'

const root = dirname(fileURLToPath(import.meta.url))
const require = createRequire(join(root, 'package.json'))
const solc = require('solc')

const SRC = 'src'
const ARTIFACTS = join(root, 'artifacts')

// Everything that changes the bytecode is fixed here and recorded in each artifact.
const settings = {
  evmVersion: 'cancun', // Ethereum since March 2024, BNB Chain since its Haber/Tycho forks
  optimizer: { enabled: true, runs: 200 },
  outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] } },
}

function readImport(path) {
  // Source unit names stay relative ("src/...", "@openzeppelin/..."), so the metadata hash
  // embedded in the bytecode does not depend on where the checkout lives.
  for (const base of [root, join(root, 'node_modules')]) {
    const file = join(base, path)
    if (existsSync(file)) return { contents: readFileSync(file, 'utf8') }
  }
  return { error: `not found: ${path}` }
}

function compile() {
  const sources = {}
  for (const name of readdirSync(join(root, SRC)).filter((n) => n.endsWith('.sol')).sort()) {
    sources[`${SRC}/${name}`] = { content: readFileSync(join(root, SRC, name), 'utf8') }
  }
  const input = { language: 'Solidity', sources, settings }
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: readImport }))
  const errors = (output.errors ?? []).filter((e) => e.severity === 'error')
  for (const e of output.errors ?? []) console.error(e.formattedMessage)
  if (errors.length) process.exit(2)

  const artifacts = {}
  for (const [source, contracts] of Object.entries(output.contracts)) {
    if (!source.startsWith(`${SRC}/`)) continue
    for (const [name, c] of Object.entries(contracts)) {
      if (!c.evm.bytecode.object) continue // interfaces and abstract contracts
      const artifact = {
        contractName: name,
        sourceName: source,
        compiler: { version: solc.version(), settings: { evmVersion: settings.evmVersion, optimizer: settings.optimizer } },
        abi: c.abi,
        bytecode: `0x${c.evm.bytecode.object}`,
        deployedBytecode: `0x${c.evm.deployedBytecode.object}`,
      }
      artifacts[`${name}.json`] = `${JSON.stringify(artifact, null, 2)}\n`
    }
  }
  return artifacts
}

const artifacts = compile()
const existing = existsSync(ARTIFACTS) ? readdirSync(ARTIFACTS).filter((n) => n.endsWith('.json')) : []

if (process.argv.includes('--check')) {
  const stale = []
  for (const [name, text] of Object.entries(artifacts)) {
    const file = join(ARTIFACTS, name)
    if (!existsSync(file) || readFileSync(file, 'utf8') !== text) stale.push(name)
  }
  for (const name of existing) if (!(name in artifacts)) stale.push(`${name} (no such contract)`)
  if (stale.length) {
    console.error(`artifacts out of date: ${stale.join(', ')}; run: node contracts/evm/compile.mjs`)
    process.exit(1)
  }
  console.log(`artifacts match the source (${Object.keys(artifacts).length} contracts, solc ${solc.version()})`)
} else {
  mkdirSync(ARTIFACTS, { recursive: true })
  for (const name of existing) if (!(name in artifacts)) unlinkSync(join(ARTIFACTS, name))
  for (const [name, text] of Object.entries(artifacts)) writeFileSync(join(ARTIFACTS, name), text)
  console.log(`wrote ${Object.keys(artifacts).map((n) => `artifacts/${n}`).join(', ')}`)
}
