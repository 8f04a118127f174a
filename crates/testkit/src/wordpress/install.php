<?php
// Installs a fresh site. Arguments: the docroot, the MariaDB socket, the admin's
// user name, and "pretty" or "plain" permalinks. Creates the database, runs
// wp_install(), sets the permalinks and prints a new application password for
// the admin. Any failure throws, so php exits non-zero.
[, $docroot, $socket, $username, $permalinks] = $argv;

mysqli_report(MYSQLI_REPORT_ERROR | MYSQLI_REPORT_STRICT);
$db = new mysqli('localhost', 'root', '', '', 0, $socket);
$db->query('CREATE DATABASE wordpress CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci');
$db->close();

define('WP_INSTALLING', true);
require $docroot . '/wp-load.php';
require_once ABSPATH . 'wp-admin/includes/upgrade.php';

$installed = wp_install('fleet-testkit', $username, $username . '@example.com', true, '', wp_generate_password(24));
$user_id = fleet_testkit_check($installed['user_id'] ?? null, 'wp_install');

// wp_install() tries pretty permalinks by requesting the site, which is not
// served yet, and so leaves them plain.
if ($permalinks === 'pretty') {
    global $wp_rewrite;
    $wp_rewrite->set_permalink_structure('/%postname%/');
}
flush_rewrite_rules(false);

[$app_password] = fleet_testkit_check(
    WP_Application_Passwords::create_new_application_password($user_id, ['name' => 'fleet-testkit']),
    'create_new_application_password'
);
echo $app_password;
