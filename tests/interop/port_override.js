// Preloaded with `node -r` so the CLI tools of lwm2m-node-lib listen on the port the test
// chose (their config.js hard-codes 5684) and log quietly.
'use strict';
const config = require('lwm2m-node-lib/config');
if (process.env.LWM2M_SERVER_PORT) {
    config.server.port = Number(process.env.LWM2M_SERVER_PORT);
}
if (process.env.LWM2M_LOG_LEVEL) {
    config.server.logLevel = process.env.LWM2M_LOG_LEVEL;
    config.client.logLevel = process.env.LWM2M_LOG_LEVEL;
}
