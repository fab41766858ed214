'use strict'
// One node of the test cluster: an aedes broker whose sessions, subscriptions,
// queued QoS 1 messages, wills and retained messages live in Redis
// (aedes-persistence-redis) and whose publishes reach the other nodes through
// Redis pub/sub (mqemitter-redis). Several of these on one Redis are one cluster:
// a terminal whose node dies reconnects to another with the same client id and
// finds its session there.
//
//   CLUSTER_MODULES=<dir>/node_modules node node.js '<json settings>'
//
// settings: {"id", "redis_port", "port", "heartbeat_ms",
//            "tls": {"port", "ca", "cert", "key", "club_id"} (optional)}
// Prints "ready <id>" on stdout once every listener accepts connections.
//
// The TLS listener does what docs/sync.md ("Broker identity") asks of a club broker:
// a client certificate is required, its CN is the identity, the client id must be
// the CN (or the id clubterm sends for it, see clientIdsOf: aedes cannot rewrite a
// client id, so any other is refused), and the ACL lets a terminal use only its own topics
// of its own club. The plain listener is open (tests only), as mosquitto's is.
const path = require('node:path')
const net = require('node:net')
const tls = require('node:tls')
const fs = require('node:fs')
const { Readable } = require('node:stream')
const { createRequire } = require('node:module')
const { pathToFileURL } = require('node:url')

const modules = process.env.CLUSTER_MODULES
if (!modules) {
  console.error('CLUSTER_MODULES must name the node_modules folder (npm ci output)')
  process.exit(2)
}
const need = createRequire(path.join(modules, 'clubterm-cluster.js'))

const settings = JSON.parse(process.argv[2])

function clubAccount (clubId) { return `club:${clubId}` }

// The same rules as hw_sim.broker.acl_text, for one club.
function allowed (cn, clubId, topic, write) {
  const p = `clubterm/v1/${clubId}/`
  if (!topic.startsWith(p)) return false
  if (cn === clubAccount(clubId)) return true
  const rest = topic.slice(p.length).split('/')
  if (rest[0] === 'terminals' && rest.length === 3 && rest[1] === cn) {
    const leaf = rest[2]
    if (write) return ['events', 'status', 'command-results'].includes(leaf)
    return ['acks', 'commands', 'status'].includes(leaf)
  }
  if (write) return false
  if (rest.length === 2 && rest[0] === 'members' && rest[1] === 'changes') return true
  // a subscription may name the merchant level with '+', as a publish names one merchant
  if (rest.length === 3 && rest[0] === 'merchants' &&
      ['rules', 'staff', 'catalogue'].includes(rest[2])) {
    return true
  }
  if (rest.length === 4 && rest[0] === 'merchants' && rest[2] === 'catalogue' &&
      rest[3] === 'changes') {
    return true
  }
  // scoped member changes: members/merchants/{m}/changes, members/groups/{g}/changes
  if (rest.length === 4 && rest[0] === 'members' && ['merchants', 'groups'].includes(rest[1]) &&
      rest[3] === 'changes') {
    return true
  }
  return false
}

// The client ids a certificate may use: its CN, or what clubterm sends for it
// ("clubterm-" + terminal id; "clubterm-club-" + club id for the club's account).
function clientIdsOf (cn) {
  const ids = [cn, `clubterm-${cn}`]
  if (cn.startsWith('club:')) ids.push(`clubterm-club-${cn.slice(5)}`)
  return ids
}

// The CN is read once, at CONNECT, and kept on the client: when the will is
// published the socket is already gone and has no peer certificate any more.
const CN = Symbol('clubterm CN')

function peerCommonName (client) {
  const conn = client && client.conn
  if (!conn || typeof conn.getPeerCertificate !== 'function') return null
  const cert = conn.getPeerCertificate()
  return (cert && cert.subject && cert.subject.CN) || null
}

function commonName (client) {
  return (client && client[CN]) || null
}

async function main () {
  const { Aedes } = await import(pathToFileURL(need.resolve('aedes')).href)
  const AsyncPersistence = need('aedes-persistence-redis/asyncPersistence.js')
  const mqemitterRedis = need('mqemitter-redis')
  const redis = { host: '127.0.0.1', port: settings.redis_port }
  const persistence = new AsyncPersistence({ ...redis, maxSessionDelivery: 100000 })
  // aedes-persistence-redis 11.2.2 (the one aedes 1.2.0 names as its peer) returns
  // async generators where aedes 1.2.0 pipes Node streams (the in-memory
  // aedes-persistence returns Readable.from(...)): without this, a SUBSCRIBE that
  // matches a retained message crashes the node.
  for (const name of ['createRetainedStreamCombi', 'createRetainedStream', 'outgoingStream',
    'streamWill', 'getClientList']) {
    const original = persistence[name].bind(persistence)
    persistence[name] = (...args) => {
      const out = original(...args)
      return typeof out.pipe === 'function' ? out : Readable.from(out)
    }
  }
  {
    // aedes 1.2.0 stores a SUBSCRIBE's whole list once per topic in it, in parallel;
    // one store per packet is enough.
    const original = persistence.addSubscriptions.bind(persistence)
    const running = new WeakMap()
    persistence.addSubscriptions = (client, subs) => {
      if (!running.has(subs)) running.set(subs, original(client, subs))
      return running.get(subs)
    }
  }
  const mq = mqemitterRedis({ ...redis })
  const broker = await Aedes.createBroker({
    id: settings.id,
    persistence,
    mq,
    heartbeatInterval: settings.heartbeat_ms || 500,
    concurrency: 1000,
    queueLimit: 1000,
    maxClientsIdLength: 200
  })
  const clubId = settings.tls && settings.tls.club_id

  broker.preConnect = function (client, packet, callback) {
    if (client.conn instanceof tls.TLSSocket) {
      const cn = peerCommonName(client)
      client[CN] = cn
      const id = packet.clientId
      if (!cn || !clientIdsOf(cn).includes(id)) {
        const err = new Error(`client id ${id} is not the certificate's CN ${cn}`)
        err.returnCode = 2 // identifier rejected
        return callback(err, false)
      }
    }
    callback(null, true)
  }
  broker.authorizePublish = function (client, packet, callback) {
    if (packet.topic.startsWith('$SYS/')) return callback(new Error('$SYS is reserved'))
    if (client && client.conn instanceof tls.TLSSocket &&
        !allowed(commonName(client), clubId, packet.topic, true)) {
      return callback(new Error(`not allowed to publish on ${packet.topic}`))
    }
    callback(null)
  }
  broker.authorizeSubscribe = function (client, sub, callback) {
    if (client && client.conn instanceof tls.TLSSocket &&
        !allowed(commonName(client), clubId, sub.topic, false)) {
      return callback(new Error(`not allowed to subscribe to ${sub.topic}`))
    }
    callback(null, sub)
  }

  const servers = []
  const plain = net.createServer(broker.handle)
  servers.push([plain, settings.port])
  if (settings.tls) {
    const t = settings.tls
    const secure = tls.createServer({
      ca: fs.readFileSync(t.ca),
      cert: fs.readFileSync(t.cert),
      key: fs.readFileSync(t.key),
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: 'TLSv1.2'
    }, broker.handle)
    servers.push([secure, t.port])
  }
  await Promise.all(servers.map(([server, port]) => new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, '127.0.0.1', resolve)
  })))
  broker.on('clientError', (client, err) => {
    if (process.env.CLUSTER_DEBUG) console.error(`client ${client && client.id}: ${err.message}`)
  })
  process.stdout.write(`ready ${settings.id}\n`)

  const stop = () => {
    for (const [server] of servers) server.close()
    broker.close(() => process.exit(0))
    setTimeout(() => process.exit(0), 2000).unref()
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : String(err))
  process.exit(1)
})
