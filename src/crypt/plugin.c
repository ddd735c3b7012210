/* The plugin's one exported symbol: what crypt_load() hands to crstream. */
#include "crypt/crypt_impl.h"

const struct crypt_ops crypt_plugin_ops = {
	.recipients_new = age_recipients_new,
	.recipients_add = age_recipients_add,
	.recipients_count = age_recipients_count,
	.recipient_text = age_recipient_text,
	.recipients_free = age_recipients_free,
	.identities_new = age_identities_new,
	.identities_add_file = age_identities_add_file,
	.identities_free = age_identities_free,
	.keygen_age = age_keygen,
	.keygen_sign = sshsig_keygen,
	.sign_key_check = sshsig_key_check,
	.sign = sshsig_sign,
	.trusted_new = sshsig_trusted_new,
	.trusted_add_file = sshsig_trusted_add_file,
	.trusted_free = sshsig_trusted_free,
	.verify = sshsig_verify,
	.age_writer = age_writer,
	.age_reader = age_reader,
	.digest_writer = digest_writer,
	.verify_reader = verify_reader,
	.digests_format = digests_format,
	.digests_parse = digests_parse,
	.digest_hex = digest_hex,
};
