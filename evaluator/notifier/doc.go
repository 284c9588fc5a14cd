// Package notifier sends alerts to Alertmanagers over their API v2
// (POST /api/v2/alerts): a bounded queue that drops the oldest alerts when
// full, batches, every Alertmanager of the configuration, retries of
// failed sends, and external labels.
//
// When alerts are sent again (firing ones every resend delay, resolved
// ones with their end time) is the rule side's decision; the notifier
// delivers what it is given.
package notifier
