// Joyent's reference verifier as a tiny HTTP server on 127.0.0.1: every request is parsed by
// http-signature (the parser CloudAPI uses) and verified with sshpk against the public keys
// given on the command line, exactly as CloudAPI's signatureAuth does.
//   node verifier.js ACCOUNT PUBKEY_FILE [USER:PUBKEY_FILE ...]
// Prints the listening URL, then answers 200 {"keyId","algorithm","signingString"} or 401 {"message"}.
'use strict';
const fs = require('fs');
const http = require('http');
const httpSignature = require('http-signature');
const sshpk = require('sshpk');

const [account, accountKeyFile, ...userArgs] = process.argv.slice(2);
const keys = {};  // keyId -> sshpk.Key
function addKey(prefix, file) {
    const key = sshpk.parseKey(fs.readFileSync(file, 'utf8'), 'ssh');
    keys[`${prefix}/keys/${key.fingerprint('md5').toString('hex')}`] = key;
}
addKey(`/${account}`, accountKeyFile);
for (const arg of userArgs) {
    const [user, file] = arg.split(':');
    addKey(`/${account}/users/${user}`, file);
}

const server = http.createServer((req, res) => {
    let reply;
    try {
        const parsed = httpSignature.parseRequest(req, {clockSkew: 300});
        const key = keys[parsed.keyId];
        if (!key) throw new Error(`unknown keyId ${parsed.keyId}`);
        if (!httpSignature.verifySignature(parsed, key)) throw new Error('signature does not verify');
        reply = [200, {keyId: parsed.keyId, algorithm: parsed.algorithm,
                       headers: parsed.params.headers, signingString: parsed.signingString,
                       url: req.url}];
    } catch (err) {
        reply = [401, {code: 'InvalidCredentials', message: err.message}];
    }
    req.resume();
    req.on('end', () => {
        res.writeHead(reply[0], {'Content-Type': 'application/json'});
        res.end(JSON.stringify(reply[1]));
    });
});
server.listen(0, '127.0.0.1', () => {
    console.log(`http://127.0.0.1:${server.address().port}`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
