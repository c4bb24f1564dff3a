"""Packaging for snnedu, driven by `settings.ini` (the nbdev 2 convention)."""
from configparser import ConfigParser
from setuptools import find_packages, setup

cfg = ConfigParser(delimiters=['='])
cfg.read('settings.ini', encoding='utf-8')
cfg = cfg['DEFAULT']

def reqs(key): return cfg.get(key, '').split()

extras = {name: reqs(f'{name}_requirements') for name in ('nir', 'data', 'classroom', 'dev')}
extras['events'] = reqs('events_requirements')   # tonic (+ librosa, numba, h5py): tutorial 7 and data.nmnist only
extras['all'] = extras['nir'] + extras['data'] + extras['events']
extras['dev'] = extras['all'] + extras['classroom'] + extras['dev']  # CI and contributors test every extra (classroom: otter-grader)

setup(
    name=cfg['lib_name'],
    version=cfg['version'],
    description=cfg['description'],
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    author=cfg['author'],
    author_email=cfg['author_email'],
    url=cfg['git_url'],
    license='Apache-2.0',
    keywords=cfg['keywords'],
    packages=find_packages(include=[cfg['lib_name'], cfg['lib_name'] + '.*']),
    include_package_data=True,
    python_requires='>=' + cfg['min_python'],
    install_requires=reqs('requirements'),
    extras_require=extras,
    entry_points={'console_scripts': cfg.get('console_scripts', '').split(),
                  'nbdev': [f"{cfg['lib_path']}={cfg['lib_path']}._modidx:d"]},
    zip_safe=False,
)
