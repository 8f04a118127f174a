<?php
/**
 * Plugin Name: fleet-testkit
 * Description: Keeps a test site from sending mail and holds the helpers that
 * fleet_testkit::WordPress runs through its PHP snippets.
 */

// wp_install() and user changes send mail; a test machine has no sendmail.
add_filter('pre_wp_mail', '__return_true');

/**
 * Returns $result, or throws when it is a WP_Error or false: a snippet that
 * throws exits non-zero, so the Rust side panics with the message.
 */
function fleet_testkit_check($result, string $what)
{
    if (is_wp_error($result)) {
        throw new RuntimeException($what . ': ' . $result->get_error_code() . ': ' . $result->get_error_message());
    }
    if ($result === false || $result === null || $result === 0) {
        throw new RuntimeException($what . ' failed');
    }
    return $result;
}

/**
 * Sets post_modified_gmt, and post_modified in the site's time zone, of the
 * posts $ids, bypassing wp_update_post(), which always sets them to now.
 *
 * $modified_gmt is anything DateTimeImmutable parses; without an offset it is UTC.
 */
function fleet_testkit_set_modified(array $ids, string $modified_gmt): void
{
    global $wpdb;
    $utc = new DateTimeZone('UTC');
    $gmt = (new DateTimeImmutable($modified_gmt, $utc))->setTimezone($utc)->format('Y-m-d H:i:s');
    $local = get_date_from_gmt($gmt);
    foreach ($ids as $id) {
        $updated = $wpdb->update(
            $wpdb->posts,
            ['post_modified_gmt' => $gmt, 'post_modified' => $local],
            ['ID' => (int) $id]
        );
        if ($updated === false) {
            throw new RuntimeException("cannot set the modified time of post $id: " . $wpdb->last_error);
        }
        clean_post_cache((int) $id);
    }
}
