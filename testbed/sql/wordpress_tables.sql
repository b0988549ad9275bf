-- The WordPress plugin's two tables, as its activation hook creates them
-- (see the plugin's description). The project never alters them.
-- {prefix} is replaced by the WordPress table prefix.

CREATE TABLE `{prefix}tvs_parent_moodle_provisioning` (
  `id` bigint(20) NOT NULL AUTO_INCREMENT,
  `parent_title` varchar(12) NOT NULL,
  `parent_fname` varchar(255) NOT NULL,
  `parent_sname` varchar(255) NOT NULL,
  `child_fname` varchar(255) NOT NULL,
  `child_sname` varchar(255) NOT NULL,
  `child_tg` varchar(16) NOT NULL,
  `parent_email` varchar(255) NOT NULL,
  `child2_fname` varchar(255) NULL,
  `child2_sname` varchar(255) NOT NULL,
  `child2_tg` varchar(16) NOT NULL,
  `child3_fname` varchar(255) NULL,
  `child3_sname` varchar(255) NOT NULL,
  `child3_tg` varchar(16) NOT NULL,
  `status` varchar(16) NOT NULL,
  `parent_comment` mediumtext,
  `staff_comment` mediumtext,
  `system_comment` mediumtext,
  `date_created` datetime NOT NULL DEFAULT '0000-00-00 00:00:00',
  `date_updated` datetime,
  `date_approved` datetime,
  `remote_ip_addr` varchar(255) NOT NULL,
  `provisioned_username` varchar(255),
  `provisioned_initialpass` varchar(255),
  `request_type` varchar(255),
  PRIMARY KEY (`id`)
) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE `{prefix}tvs_parent_moodle_provisioning_auth` (
  `id` bigint(20) NOT NULL AUTO_INCREMENT,
  `username` varchar(255) NOT NULL,
  `parent_title` varchar(12) NOT NULL,
  `parent_fname` varchar(255) NOT NULL,
  `parent_sname` varchar(255) NOT NULL,
  `parent_email` varchar(255) NOT NULL,
  `description` varchar(255) NOT NULL,
  `request_id` bigint(20) NOT NULL,
  PRIMARY KEY (`id`)
) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
